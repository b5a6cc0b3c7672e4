//! The controller RPC wire format: `[body length: u32 big-endian][body]`,
//! the body one JSON [`ControllerRequest`] or [`ControllerResponse`].
//!
//! The codec itself does no socket I/O beyond reading and writing whole
//! frames on any `AsyncRead`/`AsyncWrite`. A length over
//! [`CONTROLLER_FRAME_BYTES_MAX`] (or zero) or a torn frame is a
//! [`FrameError`] and the connection must be closed: there is no way to
//! find the next frame's start. A whole frame whose body does not decode
//! (garbage JSON, a request this version does not know) leaves the stream
//! in step, so the server reads bodies with [`read_frame_body`], answers
//! such a frame with [`RemoteError::BadRequest`] and keeps the connection.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::SnapshotMetaOf;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cluster::raft::log_store::FRAME_PAYLOAD_BYTES_MAX;
use crate::cluster::raft::types::{ControllerRaft, Vote};

/// Largest frame body sent or accepted, in bytes. A full snapshot travels
/// in one frame: its bytes are at most the snapshot file's frame limit
/// (`FRAME_PAYLOAD_BYTES_MAX`), and as an escaped JSON string they can
/// grow (quotes become `\"`), hence the factor of 4.
pub const CONTROLLER_FRAME_BYTES_MAX: usize = 64 << 20;
/// Bytes of the length prefix.
pub const FRAME_LENGTH_BYTES: usize = 4;

const _: () = assert!(CONTROLLER_FRAME_BYTES_MAX >= 4 * FRAME_PAYLOAD_BYTES_MAX);
const _: () = assert!(CONTROLLER_FRAME_BYTES_MAX <= u32::MAX as usize);

/// A request from one controller (or broker) to a controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// Raft AppendEntries (also the heartbeat).
    AppendEntries(AppendEntriesRequest<ControllerRaft>),
    /// Raft RequestVote.
    Vote(VoteRequest<ControllerRaft>),
    /// Raft Pre-Vote (asks whether a vote would be granted).
    PreVote(VoteRequest<ControllerRaft>),
    /// A whole snapshot, installed on the target if `vote` is still valid.
    FullSnapshot {
        /// The sending leader's vote.
        vote: Vote,
        /// Last log id and membership the snapshot covers.
        meta: SnapshotMetaOf<ControllerRaft>,
        /// The snapshot bytes (the state machine's snapshot is JSON text,
        /// so it travels as a string, not as an array of numbers).
        snapshot: String,
    },
    /// An application request (broker registration, heartbeats, forwarded
    /// admin changes), handed to the server's `AppHandler` as is.
    App(serde_json::Value),
}

/// The answer to a [`ControllerRequest`], variant for variant, or a
/// [`RemoteError`].
#[derive(Debug, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// Answer to [`ControllerRequest::AppendEntries`].
    AppendEntries(AppendEntriesResponse<ControllerRaft>),
    /// Answer to [`ControllerRequest::Vote`].
    Vote(VoteResponse<ControllerRaft>),
    /// Answer to [`ControllerRequest::PreVote`].
    PreVote(VoteResponse<ControllerRaft>),
    /// Answer to [`ControllerRequest::FullSnapshot`].
    FullSnapshot(SnapshotResponse<ControllerRaft>),
    /// Answer to [`ControllerRequest::App`].
    App(serde_json::Value),
    /// The target could not serve the request.
    Error(RemoteError),
}

/// Why a controller could not serve a well-formed request: an answer on
/// the connection, which stays open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The target's Raft refused or failed (its `RaftError` or `Fatal`,
    /// as text: e.g. it is shutting down).
    #[error("raft error on the target: {0}")]
    Raft(String),
    /// The target's application handler answered with an error (e.g. "not
    /// leader, leader is N at ADDR").
    #[error("application error on the target: {0}")]
    App(String),
    /// A whole frame whose body is not a request this node knows (garbage
    /// JSON, an unknown or malformed variant): the decode error, as text.
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// A socket read or write failed (including EOF inside a frame).
    #[error("controller connection i/o: {0}")]
    Io(#[from] io::Error),
    /// The length prefix is over [`CONTROLLER_FRAME_BYTES_MAX`] (or zero).
    #[error("frame length {bytes} outside 1..={CONTROLLER_FRAME_BYTES_MAX} bytes")]
    BadLength {
        /// The announced length.
        bytes: usize,
    },
    /// The body is not the JSON of the expected message.
    #[error("frame body does not decode: {0}")]
    Decode(String),
    /// A message encodes to more than [`CONTROLLER_FRAME_BYTES_MAX`], or
    /// not at all.
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// Encodes `message` as one frame (length prefix + JSON body).
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut frame = vec![0u8; FRAME_LENGTH_BYTES];
    serde_json::to_writer(&mut frame, message).map_err(|e| FrameError::Encode(e.to_string()))?;
    let body = frame.len() - FRAME_LENGTH_BYTES;
    if body > CONTROLLER_FRAME_BYTES_MAX {
        let reason = format!("{body} bytes, over {CONTROLLER_FRAME_BYTES_MAX}");
        return Err(FrameError::Encode(reason));
    }
    frame[..FRAME_LENGTH_BYTES].copy_from_slice(&(body as u32).to_be_bytes());
    Ok(frame)
}

/// Writes one frame holding `message`.
pub async fn write_frame<W, T>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let frame = encode_frame(message)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame and decodes its body. [`FrameError::Closed`] if the
/// peer closed the connection before the frame's first byte.
pub async fn read_frame<R, T>(reader: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let body = read_frame_body(reader).await?;
    decode_body(&body)
}

/// Decodes a frame body read by [`read_frame_body`].
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Reads one frame's body, undecoded: after an `Ok` the reader is at the
/// next frame's start whatever the body holds. [`FrameError::Closed`] if
/// the peer closed the connection before the frame's first byte.
pub async fn read_frame_body<R>(reader: &mut R) -> Result<Vec<u8>, FrameError>
where
    R: AsyncRead + Unpin,
{
    let mut prefix = [0u8; FRAME_LENGTH_BYTES];
    let first = reader.read(&mut prefix).await?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    reader.read_exact(&mut prefix[first..]).await?;
    let bytes = u32::from_be_bytes(prefix) as usize;
    if bytes == 0 || bytes > CONTROLLER_FRAME_BYTES_MAX {
        return Err(FrameError::BadLength { bytes });
    }
    let mut body = vec![0u8; bytes];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn app_request_round_trips_through_a_frame() {
        let request = ControllerRequest::App(serde_json::json!({"register": 7}));
        let frame = encode_frame(&request).unwrap();
        let body = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(body, frame.len() - 4);
        let mut reader = futures::io::Cursor::new(frame);
        let back: ControllerRequest = block_on(read_frame(&mut reader)).unwrap();
        assert!(matches!(back, ControllerRequest::App(v) if v["register"] == 7));
        let at_end: Result<ControllerRequest, _> = block_on(read_frame(&mut reader));
        assert!(matches!(at_end, Err(FrameError::Closed)));
    }

    #[test]
    fn oversized_and_zero_lengths_are_refused_before_reading_a_body() {
        for bytes in [0u32, CONTROLLER_FRAME_BYTES_MAX as u32 + 1, u32::MAX] {
            let mut reader = futures::io::Cursor::new(bytes.to_be_bytes().to_vec());
            let read: Result<ControllerRequest, _> = block_on(read_frame(&mut reader));
            assert!(matches!(read, Err(FrameError::BadLength { .. })), "{bytes}");
        }
    }

    #[test]
    fn garbage_body_and_torn_frame_are_errors() {
        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"{{{{{");
        let mut reader = futures::io::Cursor::new(garbage);
        let read: Result<ControllerRequest, _> = block_on(read_frame(&mut reader));
        assert!(matches!(read, Err(FrameError::Decode(_))));
        let mut torn = 50u32.to_be_bytes().to_vec();
        torn.extend_from_slice(b"{\"App\":");
        let mut reader = futures::io::Cursor::new(torn);
        let read: Result<ControllerRequest, _> = block_on(read_frame(&mut reader));
        assert!(matches!(read, Err(FrameError::Io(_))));
    }
}
