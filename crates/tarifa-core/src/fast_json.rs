//! A fast scanner for the common shape of a normalized event line.
//!
//! Rating speed is bounded by JSON parsing (see BENCHMARKS.md), and nearly every line of a real log
//! is a flat object with short ASCII strings. This scanner fills the same [`RawLine`] that serde
//! would, so validation and errors stay in one place (`input::normalized`); it gives up (returns
//! `None`) on anything it does not handle exactly like serde — escapes, floats, duplicate keys,
//! webhook bodies, group member arrays, account updates, malformed JSON — and the caller falls
//! back to serde. Every field of [`RawLine`] must be either filled here or a reason to give up:
//! a key skipped here as unknown would be silently lost.

use crate::raw::{
    GroupRef, RawAgent, RawLine, RawLineConversation, RawPricing, RawTemplate, Scalar,
    TemplateField,
};
use serde::de::IgnoredAny;
use std::borrow::Cow;

/// Bytes that end the fast string scan: the closing quote, an escape, a control character.
static STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Position of the first byte of `b` that ends a string scan (see [`STOPS`]), eight bytes at a
/// time: for each of `"`, `\\` and "below 0x20" the classic has-zero-byte trick marks candidate
/// bytes; the lowest mark of each test is exact (false marks only occur above a true one), so
/// the lowest of all marks is the answer. Strings here are short, so this beats a SIMD search.
#[inline(always)]
fn find_stop(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = v ^ (ONES * b'"' as u64);
        let escape = v ^ (ONES * b'\\' as u64);
        let marks = ((quote.wrapping_sub(ONES) & !quote)
            | (escape.wrapping_sub(ONES) & !escape)
            | (v.wrapping_sub(ONES * 0x20) & !v))
            & HIGH;
        if marks != 0 {
            return Some(i + (marks.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| STOPS[c as usize])
        .map(|p| i + p)
}

struct Scanner<'a> {
    /// The line, already checked to be UTF-8 (one check per line, not one per string).
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        self.string_body()
    }

    /// The rest of a string whose opening quote is consumed.
    #[inline(always)]
    fn string_body(&mut self) -> Option<&'a str> {
        let start = self.i;
        let rest = &self.b[start..];
        let len = find_stop(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        // Both ends are at ASCII quotes, hence at char boundaries.
        self.text.get(start..start + len)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Consumes `null` if it is next.
    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    /// An integer without fraction or exponent.
    fn integer(&mut self) -> Option<i64> {
        self.ws();
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits_start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = &self.b[digits_start..self.i];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || digits.len() > 18 {
            return None;
        }
        // serde_json reads `-0` as a float.
        if digits == b"0" && start != digits_start {
            return None;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.text.get(start..self.i)?.parse().ok()
    }

    #[inline(always)]
    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                Some(Some(Cow::Borrowed(self.string_body()?)))
            }
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// `true`, `false` or `null`.
    fn opt_bool(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// Skips any JSON value, checking its syntax.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > 32 {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(|s, _| s.skip_value(depth + 1)),
            b'[' => self.array(|s| s.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.integer().map(|_| ()),
        }
    }

    /// Iterates the comma-separated items between `open` and `close`, calling `item`, which
    /// must consume each.
    #[inline(always)]
    fn items(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Iterates the items of an array, calling `item`, which must consume each.
    fn array(&mut self, item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.items(b'[', b']', item)
    }

    /// Iterates the members of an object, calling `member` with each key; `member` must consume
    /// the value. Duplicate known keys are detected by the caller.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.items(b'{', b'}', |s| {
            let key = s.string()?;
            s.eat(b':')?;
            member(s, key)
        })
    }
}

/// Sets a field once; a second occurrence (serde: "duplicate field") gives up.
fn once<T>(slot: &mut Option<T>, seen: &mut u32, bit: u32, value: Option<T>) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    *slot = value;
    Some(())
}

/// Scans a flat normalized event; `None` means "let serde do it".
pub(crate) fn scan(line: &[u8]) -> Option<RawLine<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut s = Scanner {
        text,
        b: line,
        i: 0,
    };
    let mut raw = RawLine::default();
    let mut seen = 0u32;
    s.object(|s, key| s.member(key, &mut raw, &mut seen))?;
    s.ws();
    (s.i == line.len()).then_some(raw)
}

/// The readers of the members of a normalized line. Each returns `None` to give up, else the
/// member's value (`None` for JSON `null`).
impl<'a> Scanner<'a> {
    /// Reads the value of member `key` into `raw`; `seen` marks the members read (a duplicate
    /// key gives up, as serde rejects it).
    #[inline(always)]
    fn member(&mut self, key: &str, raw: &mut RawLine<'a>, seen: &mut u32) -> Option<()> {
        let bit = |n: u32| 1u32 << n;
        match key.as_bytes() {
            b"type" => once(&mut raw.kind, seen, bit(0), self.opt_string()?),
            b"id" => once(&mut raw.id, seen, bit(1), self.opt_string()?),
            b"at" => once(&mut raw.at, seen, bit(2), self.at()?),
            b"business" => once(&mut raw.business, seen, bit(3), self.opt_string()?),
            b"phone" => once(&mut raw.phone, seen, bit(4), self.opt_string()?),
            b"user" => once(&mut raw.user, seen, bit(5), self.opt_string()?),
            b"referral" => once(&mut raw.referral, seen, bit(6), self.referral()?),
            b"platform" => once(&mut raw.platform, seen, bit(7), self.opt_string()?),
            b"text" => once(&mut raw.text, seen, bit(17), self.opt_string()?),
            b"template" => once(&mut raw.template, seen, bit(8), self.template()?),
            b"status" => once(&mut raw.status, seen, bit(9), self.opt_string()?),
            b"recipient" => once(&mut raw.recipient, seen, bit(10), self.opt_string()?),
            b"category" => once(&mut raw.category, seen, bit(11), self.opt_string()?),
            b"agent" => once(&mut raw.agent, seen, bit(12), self.or_null(Self::agent)?),
            // Only the id form; a full group object (with members) goes to serde.
            b"group" => {
                let v = self.or_null(|s| Some(GroupRef::Id(Cow::Borrowed(s.string()?))))?;
                once(&mut raw.group, seen, bit(13), v)
            }
            b"pricing" => once(
                &mut raw.pricing,
                seen,
                bit(14),
                self.or_null(Self::pricing)?,
            ),
            b"conversation" => {
                let v = self.or_null(Self::conversation)?;
                once(&mut raw.conversation, seen, bit(15), v)
            }
            b"errors" => once(&mut raw.errors, seen, bit(16), self.or_null(Self::errors)?),
            // Webhook bodies and account updates (rare, nested) are serde's.
            b"object"
            | b"entry"
            | b"event"
            | b"volume_tier_info"
            | b"auth_international_rate_eligibility" => None,
            _ => self.skip_value(0),
        }
    }

    /// `null`, or the value `read` reads.
    #[inline(always)]
    fn or_null<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// `at`: Unix seconds, or a string `parse_instant` reads.
    #[inline]
    fn at(&mut self) -> Option<Option<Scalar<'a>>> {
        self.or_null(|s| {
            Some(if s.peek()? == b'"' {
                Scalar::Str(Cow::Borrowed(s.string()?))
            } else {
                Scalar::Int(s.integer()?)
            })
        })
    }

    /// `referral`: any value but `null` is a referral.
    #[inline]
    fn referral(&mut self) -> Option<Option<IgnoredAny>> {
        self.or_null(|s| {
            s.skip_value(0)?;
            Some(IgnoredAny)
        })
    }

    /// `template`: a name (template_category events) or `{"name", "category"}`.
    #[inline]
    fn template(&mut self) -> Option<Option<TemplateField<'a>>> {
        self.or_null(|s| {
            if s.peek()? == b'"' {
                return Some(TemplateField::Name(Cow::Borrowed(s.string()?)));
            }
            let mut t = RawTemplate {
                name: None,
                category: None,
            };
            let mut tseen = 0u32;
            s.object(|s, k| match k.as_bytes() {
                b"name" => once(&mut t.name, &mut tseen, 1, s.opt_string()?),
                b"category" => once(&mut t.category, &mut tseen, 2, s.opt_string()?),
                _ => s.skip_value(1),
            })?;
            Some(TemplateField::Object(t))
        })
    }

    /// `agent`: `{"tokens"}`.
    fn agent(&mut self) -> Option<RawAgent> {
        let mut tokens: Option<u64> = None;
        let mut aseen = 0u32;
        self.object(|s, k| match k.as_bytes() {
            b"tokens" => {
                let t = s.or_null(|s| u64::try_from(s.integer()?).ok())?;
                once(&mut tokens, &mut aseen, 1, t)
            }
            _ => s.skip_value(1),
        })?;
        Some(RawAgent { tokens })
    }

    /// `pricing`: Meta's object.
    fn pricing(&mut self) -> Option<RawPricing<'a>> {
        let mut p = RawPricing::default();
        let mut pseen = 0u32;
        self.object(|s, k| match k.as_bytes() {
            b"billable" => once(&mut p.billable, &mut pseen, 1, s.opt_bool()?),
            b"pricing_model" => once(&mut p.pricing_model, &mut pseen, 2, s.opt_string()?),
            b"category" => once(&mut p.category, &mut pseen, 4, s.opt_string()?),
            b"type" => once(&mut p.pricing_type, &mut pseen, 8, s.opt_string()?),
            _ => s.skip_value(1),
        })?;
        Some(p)
    }

    /// `conversation`: `{"id", "origin"}`.
    fn conversation(&mut self) -> Option<RawLineConversation<'a>> {
        let mut c = RawLineConversation::default();
        let mut cseen = 0u32;
        self.object(|s, k| match k.as_bytes() {
            b"id" => once(&mut c.id, &mut cseen, 1, s.opt_string()?),
            b"origin" => once(&mut c.origin, &mut cseen, 2, s.opt_string()?),
            _ => s.skip_value(1),
        })?;
        Some(c)
    }

    /// `errors`: an array of codes.
    fn errors(&mut self) -> Option<Vec<u32>> {
        let mut codes = Vec::new();
        self.array(|s| {
            codes.push(u32::try_from(s.integer()?).ok()?);
            Some(())
        })?;
        Some(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::{find_stop, STOPS};

    /// The word-at-a-time search finds exactly what a byte loop finds, wherever the stop is.
    #[test]
    fn find_stop_agrees_with_a_byte_loop() {
        let mut text: Vec<u8> = (0u8..=255)
            .filter(|c| !STOPS[*c as usize])
            .cycle()
            .take(40)
            .collect();
        for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in 0..text.len() {
                let saved = text[at];
                text[at] = stop;
                assert_eq!(find_stop(&text), Some(at), "stop {stop:#x} at {at}");
                // A later stop never hides an earlier one.
                if at + 3 < text.len() {
                    let later = text[at + 3];
                    text[at + 3] = b'"';
                    assert_eq!(find_stop(&text), Some(at));
                    text[at + 3] = later;
                }
                text[at] = saved;
            }
        }
        assert_eq!(find_stop(&text), None);
        assert_eq!(find_stop(b""), None);
        assert_eq!(find_stop("é\"".as_bytes()), Some(2));
    }
}
