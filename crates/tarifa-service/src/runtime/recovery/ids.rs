//! Random ids for recoveries and schedulers, and single-use coupon codes. Without an entropy
//! source they fall back to the clock and a counter, which is still unique within a process.

use std::sync::atomic::{AtomicU64, Ordering};

/// A short random id (lowercase base32, 16 characters).
pub fn random_id() -> String {
    random_text(16, b"abcdefghijklmnopqrstuvwxyz234567")
}

/// A unique single-use coupon code: the prefix and 8 characters without look-alikes.
pub fn unique_code(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        random_text(8, b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    )
}

fn random_text(n: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        fill_from_clock(&mut bytes);
    }
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// Bytes from the clock and a process-wide counter, for when the system has no entropy.
fn fill_from_clock(bytes: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = xxhash_rust::xxh3::xxh3_64(
        &[
            crate::clock::now().to_le_bytes(),
            COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes(),
        ]
        .concat(),
    );
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
}
