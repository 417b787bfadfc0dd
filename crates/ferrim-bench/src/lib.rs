//! `ferrim-bench`: an open-loop load generator for ferrim (msync over WebSocket) and for XMPP
//! servers (ejabberd), with the same workloads in the same shape for both:
//!
//! * W0 register: users per second through batch REST (ferrim) or in-band registration (XMPP);
//! * W1 login storm at rising arrival rates;
//! * W2 idle hold: N connections held with heartbeats, server RSS per connection and idle CPU;
//! * W3 one-to-one chat at rising aggregate rates, end-to-end latency, loss and duplicates;
//! * W4 offline sync: K messages waiting for each of M users who then log in;
//! * W5 kick: the device cap reached plus one more login.
//!
//! Arrivals are scheduled from a start instant at a fixed rate and latency is measured from
//! the *scheduled* time, so a slow server cannot slow down its own load (no coordinated
//! omission). The workloads are library functions so the smoke test can run them at tiny
//! scale; `main.rs` is a thin CLI around them.

pub mod chart;
pub mod ferrim;
pub mod openloop;
pub mod procfs;
pub mod report;
pub mod stats;
pub mod target;
pub mod workloads;
pub mod xmpp;

pub use target::{Incoming, Session, Sink, Target};
