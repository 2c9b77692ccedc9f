//! Where lines go: a large write buffer, and optionally a sliding window that shuffles lines
//! (late and out-of-order webhooks, `--shuffle-window`).

use super::random::Rng;
use anyhow::{Context, Result};
use std::io::Write;

pub(super) struct Sink<'o> {
    out: &'o mut dyn Write,
    buf: Vec<u8>,
    window: Vec<Vec<u8>>,
    cap: usize,
    rng: Rng,
    /// Bytes written so far.
    pub bytes: u64,
}

/// The buffer is written out once it holds this much.
const FLUSH_AT: usize = 1 << 18;

impl<'o> Sink<'o> {
    pub(super) fn new(out: &'o mut dyn Write, cap: usize, seed: u64) -> Sink<'o> {
        Sink {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            window: Vec::new(),
            cap,
            rng: Rng::new(seed ^ 0x5AFF_1E00_0000_0001),
            bytes: 0,
        }
    }

    fn write(&mut self, line: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(line);
        self.bytes += line.len() as u64;
        if self.buf.len() >= FLUSH_AT {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Writes `line`, or puts it in the window in place of a random line that it writes.
    pub(super) fn push(&mut self, line: &[u8]) -> Result<()> {
        if self.cap <= 1 {
            return self.write(line);
        }
        if self.window.len() < self.cap {
            self.window.push(line.to_vec());
            return Ok(());
        }
        let j = self.rng.below(self.cap as u64) as usize;
        let mut slot = std::mem::take(&mut self.window[j]);
        self.write(&slot)?;
        slot.clear();
        slot.extend_from_slice(line);
        self.window[j] = slot;
        Ok(())
    }

    /// Writes the window in random order and flushes.
    pub(super) fn finish(&mut self) -> Result<()> {
        while !self.window.is_empty() {
            let j = self.rng.below(self.window.len() as u64) as usize;
            let slot = self.window.swap_remove(j);
            self.write(&slot)?;
        }
        self.write_buffer()?;
        self.out.flush().context("writing output")
    }

    fn write_buffer(&mut self) -> Result<()> {
        self.out.write_all(&self.buf).context("writing output")?;
        self.buf.clear();
        Ok(())
    }
}
