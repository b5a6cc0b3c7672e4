//! [`GlommioRuntime`]: openraft's `AsyncRuntime` on a glommio executor.
//!
//! openraft drives its core, replication and state machine workers as
//! tasks, and talks between them with mpsc, oneshot and watch channels,
//! timers and an async mutex; the runtime adapter supplies those. With
//! openraft's `single-threaded` feature none of them must be `Send`, so
//! everything here is `Rc`/`RefCell`-based and lives on the one shard that
//! runs the Raft node. Decisions:
//!
//! - `spawn` is `glommio::spawn_local` on the current executor, detached: a
//!   dropped join handle lets the task run on, as tokio's does (openraft
//!   relies on that). A glommio join yields `None` when the task did not
//!   finish (cancelled with its executor); that is the [`JoinError`].
//! - Time is `std::time::Instant` (glommio's timers use it too) and sleeps
//!   are glommio `Timer`s, so they are driven by the executor's reactor.
//! - The bounded mpsc channel is our own ([`mpsc`]): futures-channel's
//!   gives every sender a guaranteed slot (capacity = buffer + senders) and
//!   has no weak sender, and openraft checks both exact backpressure and
//!   weak senders.
//! - The watch channel is our own too ([`watch`]): tokio-like semantics
//!   (a version number per value; `changed` marks it seen; `send` fails
//!   with no receiver) on a `RefCell`.
//! - Oneshot and the mutex are futures-channel's and futures' (no `Send`
//!   needed, they are fine on one thread).
//! - `block_on` builds a fresh glommio `LocalExecutor` per call: it is for
//!   tests and tools, the broker runs Raft on a shard it already has.
//!
//! openraft ships a conformance suite for runtimes
//! (`openraft::testing::runtime::Suite`); the tests run it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use openraft::{AsyncRuntime, OptionalSend};

pub mod mpsc;
pub mod watch;

/// openraft's `AsyncRuntime` on glommio; see the module doc. The value
/// itself is only used by `new`/`block_on` (tests and tools).
#[derive(Debug, Default)]
pub struct GlommioRuntime {
    _private: (),
}

/// A spawned task ended without its output: it was cancelled (its executor
/// shut down) before finishing.
#[derive(Debug, thiserror::Error)]
#[error("raft task ended without a result (cancelled with its executor)")]
pub struct JoinError;

/// A [`GlommioRuntime::spawn`]ed task; dropping it detaches the task.
pub struct JoinHandle<T>(glommio::task::JoinHandle<T>);

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // glommio's JoinHandle is Unpin.
        self.0.poll_unpin(cx).map(|out| out.ok_or(JoinError))
    }
}

/// A timeout expired before the future finished.
#[derive(Debug, thiserror::Error)]
#[error("raft timeout elapsed")]
pub struct Elapsed;

/// A sleep on a glommio timer.
pub type Sleep = Pin<Box<dyn Future<Output = ()>>>;

/// `future`, failed with [`Elapsed`] if `delay` ends first.
pub struct Timeout<F> {
    // Boxed so the adapter needs no pin projection; a timeout is per RPC or
    // per election, not per record.
    future: Pin<Box<F>>,
    delay: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The future first, like tokio: a result ready at the deadline wins.
        if let Poll::Ready(out) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        self.delay.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

fn sleep_for(duration: Duration) -> Sleep {
    Box::pin(glommio::timer::Timer::new(duration).map(|_| ()))
}

fn sleep_until(deadline: Instant) -> Sleep {
    sleep_for(deadline.saturating_duration_since(Instant::now()))
}

impl AsyncRuntime for GlommioRuntime {
    type JoinError = JoinError;
    type JoinHandle<T: OptionalSend + 'static> = JoinHandle<T>;
    type Sleep = Sleep;
    type Instant = Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = rand::rngs::ThreadRng;
    type Mpsc = mpsc::RcMpsc;
    type Watch = watch::RcWatch;
    type Oneshot = FuturesOneshot;
    type Mutex<T: OptionalSend + 'static> = FuturesMutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        JoinHandle(glommio::spawn_local(future).detach())
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        sleep_for(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future: Box::pin(future),
            delay: sleep_for(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future: Box::pin(future),
            delay: sleep_until(deadline),
        }
    }

    fn is_panic(_: &Self::JoinError) -> bool {
        // A panicking glommio task takes its executor down with it, so a
        // join error is always a cancellation.
        false
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        rand::rng()
    }

    fn new(_threads: usize) -> Self {
        Self::default()
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap_or_else(|e| panic!("cannot create a glommio executor for raft: {e}"));
        executor.run(future)
    }
}

/// futures-channel's oneshot, under openraft's `Oneshot` trait.
#[derive(Debug)]
pub struct FuturesOneshot;

/// Sending half of [`FuturesOneshot`].
pub struct OneshotSender<T>(futures_channel::oneshot::Sender<T>);

impl openraft::async_runtime::Oneshot for FuturesOneshot {
    type Sender<T: OptionalSend> = OneshotSender<T>;
    type Receiver<T: OptionalSend> = futures_channel::oneshot::Receiver<T>;
    type ReceiverError = futures_channel::oneshot::Canceled;

    fn channel<T: OptionalSend>() -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = futures_channel::oneshot::channel();
        (OneshotSender(tx), rx)
    }
}

impl<T: OptionalSend> openraft::async_runtime::OneshotSender<T> for OneshotSender<T> {
    fn send(self, value: T) -> Result<(), T> {
        self.0.send(value)
    }
}

/// futures' async mutex, under openraft's `Mutex` trait.
pub struct FuturesMutex<T>(futures::lock::Mutex<T>);

impl<T: OptionalSend + 'static> openraft::async_runtime::Mutex<T> for FuturesMutex<T> {
    type Guard<'a>
        = futures::lock::MutexGuard<'a, T>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        FuturesMutex(futures::lock::Mutex::new(value))
    }

    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + OptionalSend {
        self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// openraft's own conformance suite for runtimes: spawn, timers,
    /// instants, select, mpsc (backpressure, weak senders, peeking),
    /// watch, oneshot, mutex, task locals, and its deterministic RNG.
    #[test]
    fn glommio_runtime_passes_openraft_runtime_suite() {
        openraft::testing::runtime::Suite::<GlommioRuntime>::test_all();
    }

    #[test]
    fn timeout_fails_a_future_that_outlives_its_deadline() {
        GlommioRuntime::new(1).block_on(async {
            let slow = GlommioRuntime::sleep(Duration::from_millis(200));
            let out = GlommioRuntime::timeout(Duration::from_millis(5), slow).await;
            assert!(out.is_err());
            let fast = async { 7 };
            let out = GlommioRuntime::timeout(Duration::from_millis(5), fast).await;
            assert_eq!(out.ok(), Some(7));
        });
    }

    #[test]
    fn dropped_join_handle_leaves_the_task_running() {
        GlommioRuntime::new(1).block_on(async {
            let (tx, rx) = futures_channel::oneshot::channel();
            drop(GlommioRuntime::spawn(async move {
                GlommioRuntime::sleep(Duration::from_millis(1)).await;
                let _ = tx.send(42);
            }));
            assert_eq!(rx.await.ok(), Some(42));
        });
    }
}
