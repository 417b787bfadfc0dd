//! Integration tests of the REST API: the real server on port 0 with a fresh data
//! directory per test.

mod auth;
mod devices;
mod helpers;
mod http;
mod registration;
mod restart;
mod sdk;
mod settings;
mod tokens;
mod users;
