//! A cap on the connections an accept loop serves at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many connections one accept loop serves at once, at most.
#[derive(Clone, Debug)]
pub struct ConnectionCap {
    live: Arc<AtomicUsize>,
    max: usize,
}

/// One connection's place under a [`ConnectionCap`], given back when it
/// drops: when the connection's thread ends however it ends (a panic
/// included), or at once if the thread never starts.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionCap {
    /// A cap of `max` connections.
    pub fn new(max: usize) -> Self {
        ConnectionCap {
            live: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more connection, or `None` at the cap.
    pub fn admit(&self) -> Option<ConnectionSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(self.live.clone()))
    }

    /// Connections served now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back_on_drop() {
        let cap = ConnectionCap::new(2);
        let a = cap.admit().expect("first");
        let b = cap.admit().expect("second");
        assert!(cap.admit().is_none());
        drop(a);
        assert_eq!(cap.live(), 1);
        let c = cap.admit().expect("room again");
        drop((b, c));
        assert_eq!(cap.live(), 0);
        // A slot moved into a thread that panics is given back too.
        let s = cap.admit().unwrap();
        let _ = std::thread::spawn(move || {
            let _s = s;
            panic!("connection thread panics");
        })
        .join();
        assert_eq!(cap.live(), 0);
    }
}
