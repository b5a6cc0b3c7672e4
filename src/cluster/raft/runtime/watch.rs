//! A single-thread watch channel for openraft's `Watch` trait, with
//! tokio's semantics: every value has a version; a receiver remembers the
//! version it saw; `changed` waits for a newer one and marks it seen;
//! `send` fails when no receiver is left (but `send_if_modified` does not).

use std::cell::{Cell, Ref, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use openraft::async_runtime::watch::SendError;
use openraft::async_runtime::{RecvError, Watch, WatchReceiver, WatchSender};
use openraft::{OptionalSend, OptionalSync};

/// The channel family, named in `GlommioRuntime`'s `AsyncRuntime` impl.
#[derive(Debug)]
pub struct RcWatch;

struct Shared<T> {
    value: RefCell<T>,
    version: Cell<u64>,
    senders: Cell<usize>,
    receivers: Cell<usize>,
    /// Receivers waiting in `changed`; all woken (and cleared) on a change
    /// or when the last sender goes.
    wakers: RefCell<Vec<Waker>>,
}

impl<T> Shared<T> {
    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Sending half; clones share the channel.
pub struct Sender<T>(Rc<Shared<T>>);

/// Receiving half; clones share the channel but not the seen version.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
}

impl Watch for RcWatch {
    type Sender<T: OptionalSend + OptionalSync> = Sender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = Receiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = Ref<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Sender<T>, Receiver<T>) {
        let shared = Rc::new(Shared {
            value: RefCell::new(init),
            version: Cell::new(0),
            senders: Cell::new(1),
            receivers: Cell::new(1),
            wakers: RefCell::new(Vec::new()),
        });
        let receiver = Receiver {
            shared: shared.clone(),
            seen: 0,
        };
        (Sender(shared), receiver)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.set(self.0.senders.get() + 1);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.senders.set(self.0.senders.get() - 1);
        if self.0.senders.get() == 0 {
            self.0.wake_all();
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<RcWatch, T> for Sender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.0.receivers.get() == 0 {
            return Err(SendError(value));
        }
        *self.0.value.borrow_mut() = value;
        self.0.version.set(self.0.version.get() + 1);
        self.0.wake_all();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = modify(&mut self.0.value.borrow_mut());
        if modified {
            self.0.version.set(self.0.version.get() + 1);
            self.0.wake_all();
        }
        modified
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        self.0.value.borrow()
    }

    fn subscribe(&self) -> Receiver<T> {
        self.0.receivers.set(self.0.receivers.get() + 1);
        Receiver {
            shared: self.0.clone(),
            seen: self.0.version.get(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<RcWatch, T> for Receiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        poll_fn(|cx| {
            let version = self.shared.version.get();
            if version != self.seen {
                self.seen = version;
                return Poll::Ready(Ok(()));
            }
            if self.shared.senders.get() == 0 {
                return Poll::Ready(Err(RecvError(())));
            }
            self.shared.wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.version.get();
        self.shared.value.borrow()
    }
}
