//! Collections shared by the core and the service.

use rustc_hash::FxBuildHasher;

/// A hash map that grows without pauses: when it outgrows its table it moves a few entries to the
/// new one at each insert (griddle), where a standard map moves them all at once. The ledger and
/// the book of a running service grow with every message, and moving a million entries at once
/// stalled the writer (and every request waiting on it) for tens of milliseconds.
pub type GrowingMap<K, V, S = FxBuildHasher> = griddle::HashMap<K, V, S>;

/// Things to look at again at a given time, taken out in time order: what a long-running state
/// forgets, visited when each item may have expired instead of by a pass over everything kept
/// (a pass over five days of messages took milliseconds per 100,000 of them, and grew with the
/// state). Filing is O(log buckets); items filed for the same time share a bucket.
#[derive(Debug, Clone)]
pub struct Schedule<T> {
    buckets: std::collections::BTreeMap<i64, Vec<T>>,
    len: usize,
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule {
            buckets: std::collections::BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> Schedule<T> {
    /// Files `item` to be taken out by the first [`Schedule::take_due`] after `at`.
    pub fn file(&mut self, at: i64, item: T) {
        self.buckets.entry(at).or_default().push(item);
        self.len += 1;
    }

    /// Takes out every item filed for a time strictly before `now`, oldest time first.
    pub fn take_due(&mut self, now: i64) -> Vec<(i64, T)> {
        self.take_due_at_most(now, usize::MAX)
    }

    /// [`Schedule::take_due`], but at most `limit` items (the oldest; items of one time in the
    /// order they were filed): the rest stay filed.
    pub fn take_due_at_most(&mut self, now: i64, limit: usize) -> Vec<(i64, T)> {
        let mut due = Vec::new();
        while due.len() < limit {
            let Some(mut bucket) = self.buckets.first_entry() else {
                break;
            };
            let at = *bucket.key();
            if at >= now {
                break;
            }
            let room = limit - due.len();
            if bucket.get().len() <= room {
                due.extend(bucket.remove().into_iter().map(|item| (at, item)));
            } else {
                due.extend(bucket.get_mut().drain(..room).map(|item| (at, item)));
            }
        }
        self.len -= due.len();
        due
    }

    /// Whether an item is filed for a time strictly before `now`.
    pub fn has_due(&self, now: i64) -> bool {
        self.buckets.keys().next().is_some_and(|&at| at < now)
    }

    /// Items filed and not yet taken out.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn a_schedule_gives_back_what_is_due_before_now_in_time_order() {
        let mut s = Schedule::default();
        s.file(30, "c");
        s.file(10, "a");
        s.file(20, "b");
        s.file(10, "a2");
        assert_eq!(s.len(), 4);
        assert_eq!(s.take_due(10), vec![], "due means strictly before now");
        assert_eq!(s.take_due(21), vec![(10, "a"), (10, "a2"), (20, "b")]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.take_due(21), vec![]);
        assert_eq!(s.take_due(i64::MAX), vec![(30, "c")]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_schedule_gives_back_at_most_what_it_is_asked_for() {
        let mut s = Schedule::default();
        for (at, item) in [(10, "a"), (10, "b"), (10, "c"), (20, "d"), (30, "e")] {
            s.file(at, item);
        }
        assert!(s.has_due(11) && !s.has_due(10));
        assert_eq!(s.take_due_at_most(25, 2), vec![(10, "a"), (10, "b")]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.take_due_at_most(25, 2), vec![(10, "c"), (20, "d")]);
        assert!(!s.has_due(25));
        assert_eq!(s.take_due_at_most(25, 2), vec![]);
        assert_eq!(s.take_due_at_most(31, 0), vec![]);
        assert_eq!(s.take_due_at_most(31, 9), vec![(30, "e")]);
        assert!(s.is_empty() && !s.has_due(i64::MAX));
    }
}
