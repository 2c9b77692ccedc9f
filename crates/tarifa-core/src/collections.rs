//! Collections shared by the core and the service.

use rustc_hash::FxBuildHasher;

/// A hash map that grows without pauses: when it outgrows its table it moves a few entries to the
/// new one at each insert (griddle), where a standard map moves them all at once. The ledger and
/// the book of a running service grow with every message, and moving a million entries at once
/// stalled the writer (and every request waiting on it) for tens of milliseconds.
pub type GrowingMap<K, V, S = FxBuildHasher> = griddle::HashMap<K, V, S>;
