//! The time-ordered queue of events in flight: sessions are generated out of order with each
//! other, and an event is written only once no later session can precede it.

use super::clock::Secs;
use super::event::Ev;
use std::collections::{BinaryHeap, VecDeque};

/// Bucket width of [`Queue`]: events due later than the current bucket wait in plain vectors.
const BUCKET: Secs = 600;

/// A time-ordered queue: a small binary heap for events due before `boundary`, and one vector
/// per later 10-minute bucket. Pops in exactly the order of one big heap, but the heap stays
/// small (cache-resident) even when hundreds of thousands of events are in flight.
pub(super) struct Queue {
    near: BinaryHeap<Ev>,
    far: VecDeque<Vec<Ev>>,
    far_len: usize,
    /// Start of the first bucket of `far`; every event in `near` is due before it.
    boundary: Secs,
}

impl Queue {
    pub(super) fn new() -> Queue {
        Queue {
            near: BinaryHeap::with_capacity(1 << 12),
            far: VecDeque::new(),
            far_len: 0,
            boundary: 0,
        }
    }

    pub(super) fn push(&mut self, ev: Ev) {
        let t = ev.time();
        if self.near.is_empty() && self.far_len == 0 && t >= self.boundary {
            // Idle: jump over the gap instead of walking empty buckets.
            self.far.clear();
            self.boundary = (t / BUCKET + 1) * BUCKET;
        }
        if t < self.boundary {
            self.near.push(ev);
            return;
        }
        let i = ((t - self.boundary) / BUCKET) as usize;
        if self.far.len() <= i {
            self.far.resize_with(i + 1, Vec::new);
        }
        self.far[i].push(ev);
        self.far_len += 1;
    }

    /// The next event, moving buckets into the heap as time advances.
    pub(super) fn peek(&mut self) -> Option<&Ev> {
        while self.near.is_empty() && self.far_len > 0 {
            // Buckets are fresh vectors: recycling them would let every one grow to the
            // largest bucket's capacity.
            let bucket = self.far.pop_front().expect("far_len > 0");
            self.boundary += BUCKET;
            self.far_len -= bucket.len();
            self.near.extend(bucket);
        }
        self.near.peek()
    }

    pub(super) fn pop(&mut self) -> Option<Ev> {
        self.peek()?;
        self.near.pop()
    }
}
