//! Reading JSON Lines fast: big chunks, lines handed out in place (no copy per line).

use std::io::{self, Read};

/// Yields the lines of a stream (without the `\n`), reading 4 MiB at a time.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; 4 << 20],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next line, or `None` at the end of the stream. A last line without `\n` is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = self.start..self.start + pos;
                self.start += pos + 1;
                return Ok(Some(&self.buf[line]));
            }
            if self.eof {
                if self.start < self.end {
                    let line = self.start..self.end;
                    self.start = self.end;
                    return Ok(Some(&self.buf[line]));
                }
                return Ok(None);
            }
            // Keep the partial line, make room, read more.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut r = LineReader::new(input);
        r.buf = vec![0; chunk];
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l.to_vec());
        }
        out
    }

    #[test]
    fn splits_lines_across_chunk_boundaries_and_long_lines() {
        let input = b"ab\ncdefghij\n\nklm";
        for chunk in [1, 2, 3, 5, 64] {
            assert_eq!(
                lines(input, chunk),
                vec![
                    b"ab".to_vec(),
                    b"cdefghij".to_vec(),
                    b"".to_vec(),
                    b"klm".to_vec()
                ],
                "chunk {chunk}"
            );
        }
        assert!(lines(b"", 4).is_empty());
        assert_eq!(lines(b"x\n", 4), vec![b"x".to_vec()]);
    }
}
