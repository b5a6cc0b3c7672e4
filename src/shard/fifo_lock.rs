//! An async lock that is granted strictly in the order `lock()` was called.
//!
//! Why not `futures::lock::Mutex`: its unlock wakes the waiter in the lowest
//! free slot of a slab (slots are reused) and a new `lock()` can take the
//! lock before the woken waiter runs, so waiters are not served in arrival
//! order. The partition's append lock must be: batches of one connection
//! have to land in the order the client sent them, also while the lock is
//! held across a flush (back-pressure, producer snapshots).
//!
//! The order is fixed by a ticket taken when `lock()` is *called*, not when
//! its future is first polled. A future dropped before it got the lock gives
//! its turn up (the next ticket is served), so cancellation never wedges
//! the lock. `!Send`: it lives on one shard.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct State {
    /// The ticket the next `lock()` call gets.
    next: u64,
    /// The ticket whose turn it is (held, or about to be taken).
    serving: u64,
    /// Wakers of tickets waiting for their turn.
    wakers: HashMap<u64, Waker>,
    /// Tickets whose futures were dropped before their turn came.
    abandoned: BTreeSet<u64>,
}

impl State {
    /// Ends the current turn: serves the next ticket still wanted.
    fn advance(&mut self) {
        self.serving += 1;
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
        if let Some(waker) = self.wakers.remove(&self.serving) {
            waker.wake();
        }
    }
}

/// A FIFO async lock (see the module doc).
#[derive(Debug, Default)]
pub struct FifoLock {
    state: Rc<RefCell<State>>,
}

impl FifoLock {
    /// A free lock.
    pub fn new() -> FifoLock {
        FifoLock::default()
    }

    /// Takes a place in line now; the future resolves when it is this
    /// caller's turn.
    pub fn lock(&self) -> Acquire {
        let ticket = {
            let mut state = self.state.borrow_mut();
            state.next += 1;
            state.next - 1
        };
        Acquire {
            state: Some(self.state.clone()),
            ticket,
        }
    }

    /// Nobody holds the lock or waits for it.
    pub fn is_idle(&self) -> bool {
        let state = self.state.borrow();
        state.serving == state.next
    }
}

/// A place in line for a [`FifoLock`].
#[derive(Debug)]
#[must_use = "a place in line does nothing unless awaited"]
pub struct Acquire {
    /// `None` once the lock was handed over as a guard.
    state: Option<Rc<RefCell<State>>>,
    ticket: u64,
}

impl Future for Acquire {
    type Output = FifoGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FifoGuard> {
        let Some(state) = self.state.as_ref() else {
            panic!("Acquire polled after it completed");
        };
        let mut inner = state.borrow_mut();
        if inner.serving == self.ticket {
            drop(inner);
            let state = self.state.take().expect("checked above");
            return Poll::Ready(FifoGuard { state });
        }
        inner.wakers.insert(self.ticket, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return; // became a guard
        };
        let mut inner = state.borrow_mut();
        inner.wakers.remove(&self.ticket);
        if inner.serving == self.ticket {
            inner.advance(); // its turn had come: pass it on
        } else {
            inner.abandoned.insert(self.ticket);
        }
    }
}

/// Holds a [`FifoLock`]; the next in line gets it when this drops.
#[derive(Debug)]
pub struct FifoGuard {
    state: Rc<RefCell<State>>,
}

impl Drop for FifoGuard {
    fn drop(&mut self) {
        self.state.borrow_mut().advance();
    }
}

/// Idle locks kept per map before a sweep drops them.
const KEYED_IDLE_LOCKS_MAX: usize = 1024;

/// One [`FifoLock`] per key, made on first use and dropped once idle (swept
/// when the map grows past [`KEYED_IDLE_LOCKS_MAX`]).
#[derive(Debug)]
pub struct KeyedFifoLocks<K> {
    locks: RefCell<HashMap<K, FifoLock>>,
}

impl<K: Eq + Hash + Clone> Default for KeyedFifoLocks<K> {
    fn default() -> Self {
        KeyedFifoLocks {
            locks: RefCell::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedFifoLocks<K> {
    /// Takes a place in line for `key` now.
    pub fn lock(&self, key: &K) -> Acquire {
        let mut locks = self.locks.borrow_mut();
        if locks.len() >= KEYED_IDLE_LOCKS_MAX && !locks.contains_key(key) {
            locks.retain(|_, lock| !lock.is_idle());
        }
        locks.entry(key.clone()).or_default().lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn run<T>(f: impl Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn fifo_lock_serves_waiters_in_call_order_even_when_slots_are_reused() {
        run(async {
            let lock = Rc::new(FifoLock::new());
            let order = Rc::new(RefCell::new(Vec::new()));
            let first = lock.lock().await;
            let mut waiting = Vec::new();
            for i in 0..5 {
                let (lock, order) = (lock.clone(), order.clone());
                let acquire = lock.lock();
                waiting.push(async move {
                    let _g = acquire.await;
                    order.borrow_mut().push(i);
                });
            }
            drop(first);
            futures::future::join_all(waiting).await;
            assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
            assert!(lock.is_idle());
        });
    }

    #[test]
    fn fifo_lock_skips_a_place_given_up_before_its_turn() {
        run(async {
            let lock = FifoLock::new();
            let held = lock.lock().await;
            let gives_up = lock.lock();
            let next = lock.lock();
            drop(gives_up);
            drop(held);
            let _g = next.await;
            assert!(!lock.is_idle());
        });
    }

    #[test]
    fn fifo_lock_passes_the_turn_on_when_its_holder_to_be_is_dropped() {
        run(async {
            let lock = FifoLock::new();
            let unpolled = lock.lock(); // its turn, never taken
            let next = lock.lock();
            drop(unpolled);
            let _g = next.await;
        });
    }

    #[test]
    fn keyed_fifo_locks_are_independent_per_key() {
        run(async {
            let locks = KeyedFifoLocks::<&str>::default();
            let _a = locks.lock(&"a").await;
            let _b = locks.lock(&"b").await; // not blocked by "a"
        });
    }
}
