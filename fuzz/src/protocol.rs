//! `corestream::protocol`, the parts that are fuzzed.

#[path = "../../src/protocol/batch/mod.rs"]
pub mod batch;
#[path = "../../src/protocol/frame.rs"]
pub mod frame;
#[path = "../../src/protocol/legacy/mod.rs"]
pub mod legacy;
