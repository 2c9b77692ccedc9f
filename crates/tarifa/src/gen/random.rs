//! The generator's own randomness: xoshiro256** seeded by SplitMix64, and the SplitMix64
//! finalizer as a hash. Ours rather than a crate's, so that the same arguments give the same
//! bytes whatever the dependency versions.

/// SplitMix64 finalizer: a bijection of `u64`, used for hashing and id scrambling.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash as a uniform float in `[0, 1)`.
pub(super) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256** seeded through SplitMix64.
#[derive(Clone)]
pub(super) struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        let mut state = seed;
        let mut s = [0u64; 4];
        for x in &mut s {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *x = mix64(state);
        }
        Rng { s }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    pub(super) fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// The value of the first of `choices` whose cumulative share exceeds a uniform draw (the
    /// last one's share is 1).
    pub(super) fn pick<T: Copy>(&mut self, choices: &[(f64, T)]) -> T {
        let r = self.f64();
        let (_, value) = choices
            .iter()
            .find(|(below, _)| r < *below)
            .or(choices.last())
            .expect("choices are not empty");
        *value
    }

    /// A uniform value in the `lo..=hi` of the band [`Rng::pick`] draws from `bands`.
    pub(super) fn banded(&mut self, bands: &[(f64, (u32, u32))]) -> u32 {
        let (lo, hi) = self.pick(bands);
        self.range(lo, hi)
    }
}
