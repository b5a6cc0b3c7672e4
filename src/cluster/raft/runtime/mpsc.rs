//! A bounded, single-thread mpsc channel for openraft's `Mpsc` trait.
//!
//! Exactly `buffer` messages fit (a send waits when the queue is full),
//! senders can be downgraded to weak ones that do not keep the channel
//! open, and the channel closes when the last strong sender or the receiver
//! goes. One `RefCell` holds it all: every party is on the same shard.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use openraft::async_runtime::{
    Mpsc, MpscReceiver, MpscSender, MpscWeakSender, SendError, TryRecvError,
};
use openraft::OptionalSend;

/// The channel family, named in `GlommioRuntime`'s `AsyncRuntime` impl.
#[derive(Debug)]
pub struct RcMpsc;

struct Channel<T> {
    queue: VecDeque<T>,
    capacity: usize,
    /// Strong senders alive; at zero the receiver sees the end.
    senders: usize,
    receiver_alive: bool,
    receiver_waker: Option<Waker>,
    /// Senders waiting for room; all are woken when room appears (a woken
    /// send that was dropped meanwhile must not swallow the wake-up).
    sender_wakers: Vec<Waker>,
}

type Shared<T> = Rc<RefCell<Channel<T>>>;

/// Sending half; clones share the channel.
pub struct Sender<T>(Shared<T>);

/// Receiving half.
pub struct Receiver<T>(Shared<T>);

/// A sender that does not keep the channel open.
pub struct WeakSender<T>(Weak<RefCell<Channel<T>>>);

impl Mpsc for RcMpsc {
    type Sender<T: OptionalSend> = Sender<T>;
    type Receiver<T: OptionalSend> = Receiver<T>;
    type WeakSender<T: OptionalSend> = WeakSender<T>;

    fn channel<T: OptionalSend>(buffer: usize) -> (Self::Sender<T>, Self::Receiver<T>) {
        let channel = Rc::new(RefCell::new(Channel {
            queue: VecDeque::new(),
            // tokio refuses 0; one slot keeps a zero-sized request usable.
            capacity: buffer.max(1),
            senders: 1,
            receiver_alive: true,
            receiver_waker: None,
            sender_wakers: Vec::new(),
        }));
        (Sender(channel.clone()), Receiver(channel))
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.borrow_mut().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut channel = self.0.borrow_mut();
        channel.senders -= 1;
        if channel.senders == 0 {
            if let Some(waker) = channel.receiver_waker.take() {
                waker.wake();
            }
        }
    }
}

impl<T: OptionalSend> MpscSender<RcMpsc, T> for Sender<T> {
    fn send(&self, msg: T) -> impl Future<Output = Result<(), SendError<T>>> + OptionalSend {
        let mut msg = Some(msg);
        poll_fn(move |cx| {
            let mut channel = self.0.borrow_mut();
            let Some(value) = msg.take() else {
                // Polled again after completion: a caller bug.
                panic!("mpsc send polled after completion");
            };
            if !channel.receiver_alive {
                return Poll::Ready(Err(SendError(value)));
            }
            if channel.queue.len() >= channel.capacity {
                msg = Some(value);
                channel.sender_wakers.push(cx.waker().clone());
                return Poll::Pending;
            }
            channel.queue.push_back(value);
            if let Some(waker) = channel.receiver_waker.take() {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        })
    }

    fn downgrade(&self) -> WeakSender<T> {
        WeakSender(Rc::downgrade(&self.0))
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender(self.0.clone())
    }
}

impl<T: OptionalSend> MpscWeakSender<RcMpsc, T> for WeakSender<T> {
    fn upgrade(&self) -> Option<Sender<T>> {
        let channel = self.0.upgrade()?;
        // The receiver holds the Rc too: the channel is open only while a
        // strong sender is.
        let mut state = channel.borrow_mut();
        if state.senders == 0 {
            return None;
        }
        state.senders += 1;
        drop(state);
        Some(Sender(channel))
    }
}

impl<T> Receiver<T> {
    fn take(&self) -> Result<T, TryRecvError> {
        let mut channel = self.0.borrow_mut();
        match channel.queue.pop_front() {
            Some(value) => {
                let wakers = std::mem::take(&mut channel.sender_wakers);
                drop(channel);
                wakers.into_iter().for_each(Waker::wake);
                Ok(value)
            }
            None if channel.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T: OptionalSend> MpscReceiver<T> for Receiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + OptionalSend {
        poll_fn(move |cx| match self.take() {
            Ok(value) => Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                self.0.borrow_mut().receiver_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.take()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut channel = self.0.borrow_mut();
        channel.receiver_alive = false;
        let queued = std::mem::take(&mut channel.queue);
        let wakers = std::mem::take(&mut channel.sender_wakers);
        drop(channel);
        // Messages may own things whose Drop touches this channel.
        drop(queued);
        wakers.into_iter().for_each(Waker::wake);
    }
}
