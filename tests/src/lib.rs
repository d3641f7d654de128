//! Test rigs: the built binaries, and real services the end-to-end tests start themselves.
//!
//! This crate only serves tests: a rig that cannot start is a failed test, so panicking with a
//! clear message is the right way out here (unlike in the product crates).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod attack;
pub mod bins;
pub mod ceph;
pub mod faultproxy;
pub mod http;
pub mod media;
pub mod station;
pub mod tsa;

/// A runtime for the async library calls of a synchronous test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
