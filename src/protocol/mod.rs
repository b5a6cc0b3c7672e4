//! The Kafka wire codec. Nothing here does I/O: it turns bytes into frames,
//! headers and validated record batches, and responses back into bytes.
//!
//! Message bodies come from the `kafka-protocol` crate (generated from
//! Kafka's own schemas); what is written by hand is what must be faster than
//! a generic decoder or must never fail on hostile input: the frame decoder
//! and the RecordBatch v2 header, which is all the broker reads of record
//! data.

pub mod batch;
pub mod compression;
pub mod control;
pub mod fetch_writer;
pub mod frame;
pub mod legacy;
pub mod record_slices;
pub mod records;
pub mod request_frame;
