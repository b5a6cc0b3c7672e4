//! The corestream sources under fuzz, compiled by path with the same module
//! paths as in the main crate (`crate::protocol::frame`, `crate::alloc`).

#![allow(dead_code)]

#[path = "../../src/alloc.rs"]
pub mod alloc;
pub mod protocol;
