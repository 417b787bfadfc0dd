//! The ferrim server: the REST API, the msync WebSocket gateway and the console, served on
//! one listener over the domain core in `ferrim-core`.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod console;
#[cfg(feature = "postgres")]
pub mod copy;
pub mod gateway;
pub mod messages;
pub mod metrics;
pub mod rest;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
