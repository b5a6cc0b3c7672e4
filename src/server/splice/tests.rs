//! SPLICE of a real file into a real socket pair, on a glommio executor.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use glommio::LocalExecutorBuilder;

use super::*;
use crate::protocol::record_slices::FileSlice;

fn file_with(bytes: &[u8]) -> (tempfile_path::Guard, OwnedFd) {
    let guard = tempfile_path::Guard::new();
    std::fs::File::create(&guard.0)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let fd: OwnedFd = std::fs::File::open(&guard.0).unwrap().into();
    (guard, fd)
}

/// A temp path removed on drop (no extra crate for one test).
mod tempfile_path {
    pub(super) struct Guard(pub(super) std::path::PathBuf);
    impl Guard {
        pub(super) fn new() -> Self {
            let name = format!(
                "corestream-splice-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
            );
            Guard(std::env::temp_dir().join(name))
        }
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn splice_sends_a_file_range_larger_than_the_socket_buffer_in_order() {
    let content: Vec<u8> = (0..(5 << 20) as u32).map(|i| (i * 7 % 251) as u8).collect();
    let (_guard, fd) = file_with(&content);
    let (tx, mut rx) = std::os::unix::net::UnixStream::pair().unwrap();
    let start = 12_345usize;
    let len = content.len() - start - 999;
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        rx.read_to_end(&mut got).unwrap();
        got
    });
    let slice = FileSlice {
        fd: Arc::new(fd),
        position: start as u64,
        len,
        batches: Arc::from(Vec::new()),
    };
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let mut splicer = Splicer::new().unwrap();
            splicer.send(tx.as_raw_fd(), &slice).await.unwrap();
            splicer.close().await;
            drop(tx);
        })
        .unwrap()
        .join()
        .unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), len);
    assert!(got == content[start..start + len], "bytes differ");
}

#[test]
fn splice_past_the_end_of_the_file_sends_nothing_and_says_so() {
    let (_guard, fd) = file_with(b"short");
    let (tx, _rx) = std::os::unix::net::UnixStream::pair().unwrap();
    let slice = FileSlice {
        fd: Arc::new(fd),
        position: 100,
        len: 10,
        batches: Arc::from(Vec::new()),
    };
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let mut splicer = Splicer::new().unwrap();
            let err = splicer.send(tx.as_raw_fd(), &slice).await.unwrap_err();
            assert!(matches!(err, SpliceError::NothingSent(_)), "{err}");
            splicer.close().await;
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn splice_into_a_full_socket_waits_without_blocking_the_executor() {
    let content: Vec<u8> = (0..(4 << 20) as u32).map(|i| (i % 253) as u8).collect();
    let (_guard, fd) = file_with(&content);
    let (tx, mut rx) = std::os::unix::net::UnixStream::pair().unwrap();
    // Nobody reads for 300 ms: the socket fills and the send must wait.
    let reader = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut got = Vec::new();
        rx.read_to_end(&mut got).unwrap();
        got
    });
    let len = content.len();
    let slice = FileSlice {
        fd: Arc::new(fd),
        position: 0,
        len,
        batches: Arc::from(Vec::new()),
    };
    let ticks = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let done = std::rc::Rc::new(std::cell::Cell::new(false));
            let ticker = glommio::spawn_local({
                let (ticks, done) = (ticks.clone(), done.clone());
                async move {
                    while !done.get() {
                        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            let mut splicer = Splicer::new().unwrap();
            splicer.send(tx.as_raw_fd(), &slice).await.unwrap();
            done.set(true);
            ticker.await;
            splicer.close().await;
            // SAFETY: F_GETFL on an open fd.
            let flags = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_GETFL) };
            assert_eq!(flags & libc::O_NONBLOCK, 0, "socket flags restored");
            drop(tx);
            ticks.get()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        ticks >= 20,
        "the executor ran only {ticks} timer ticks while the send waited"
    );
    let got = reader.join().unwrap();
    assert!(got == content, "bytes differ");
}
