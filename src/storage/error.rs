//! [`StorageError`]: what the storage layer refuses or fails at, with
//! context (operation, path, position, offsets).

use std::io;
use std::path::{Path, PathBuf};

use crate::protocol::batch::BatchError;

/// An error of the partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A disk operation failed.
    #[error("{op} {}{}: {source}", path.display(), position.map(|p| format!(" at byte {p}")).unwrap_or_default())]
    Io {
        /// What was being done ("write segment", "fdatasync index"...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Byte position in the file, when there is one.
        position: Option<u64>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A read or lookup outside `[log_start, high_watermark]`.
    #[error(
        "offset {offset} out of range: log start {log_start}, high watermark {high_watermark}"
    )]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First offset still in the log.
        log_start: i64,
        /// Durable end of the log.
        high_watermark: i64,
    },
    /// An append whose bytes are not whole v2 batches (the caller validates
    /// produce data, so this is a bug upstream or a hostile caller).
    #[error("append refused: {0}")]
    InvalidBatch(#[from] BatchError),
    /// Assigning offsets would overflow i64.
    #[error("offset overflow appending at offset {next_offset}")]
    OffsetOverflow {
        /// The log end offset at the time.
        next_offset: i64,
    },
    /// Stored data failed a check when read back (served data is checked).
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position in it.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// A replicated append whose batches do not continue the log: the
    /// first batch must start at the log end and each next one right after
    /// the previous one (nothing was written).
    #[error("replicated batch at offset {found} does not continue the log at offset {expected} ({})", dir.display())]
    NonContiguousReplica {
        /// The partition directory.
        dir: PathBuf,
        /// The base offset the batch had to have.
        expected: i64,
        /// The base offset it had.
        found: i64,
    },
    /// `reset_to` below the end of a log that holds batches (a reset only
    /// moves such a log forward).
    #[error("log reset to offset {offset} refused: the log ends at {end} ({})", dir.display())]
    ResetBelowLogEnd {
        /// The partition directory.
        dir: PathBuf,
        /// The offset asked for.
        offset: i64,
        /// The log end offset.
        end: i64,
    },
    /// A truncation that would remove data below the log start (the
    /// target, or the start of the batch holding it, is below it).
    #[error("truncation to offset {offset} refused: log start {log_start}, cut would start at {cut_at} ({})", dir.display())]
    TruncateBelowLogStart {
        /// The partition directory.
        dir: PathBuf,
        /// The offset asked for.
        offset: i64,
        /// Base offset of the first batch the cut removes.
        cut_at: i64,
        /// The log start offset.
        log_start: i64,
    },
    /// `LogConfig` values out of their allowed ranges.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
    /// A flush failed earlier; the durable state of the log is unknown
    /// (after a failed fdatasync the page state cannot be trusted), so the
    /// log refuses further work until it is reopened, which runs recovery.
    #[error("partition log {} failed and must be reopened: {reason}", dir.display())]
    Failed {
        /// The partition directory.
        dir: PathBuf,
        /// The first error.
        reason: String,
    },
}

impl StorageError {
    /// Whether this is the disk being full (ENOSPC, or EDQUOT for a
    /// quota): a state that goes away when space is freed, after which the
    /// log can be reopened without a restart.
    pub fn is_out_of_space(&self) -> bool {
        let StorageError::Io { source, .. } = self else {
            return false;
        };
        matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        )
    }

    /// A closure turning an `io::Error` into [`StorageError::Io`] with context.
    pub(crate) fn io_at<'a>(
        op: &'static str,
        path: &'a Path,
        position: Option<u64>,
    ) -> impl FnOnce(io::Error) -> StorageError + 'a {
        move |source| StorageError::Io {
            op,
            path: path.to_path_buf(),
            position,
            source,
        }
    }
}
