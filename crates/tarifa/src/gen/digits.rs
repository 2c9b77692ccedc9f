//! Writing numbers into line buffers by hand (decimal, two-digit fields, base32 and hex ids):
//! the generator renders millions of lines a second and does not go through `fmt` for them.

static DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

pub(super) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let low = (v % 100) as u32;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(pair(low));
    }
    if v >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(pair(v as u32));
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// The two digits of `v < 100`.
pub(super) fn pair(v: u32) -> &'static [u8] {
    let d = v as usize * 2;
    &DIGIT_PAIRS[d..d + 2]
}

pub(super) fn put_pair(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(pair(v));
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8; 16] = b"0123456789abcdef";

pub(super) fn put_base32(out: &mut Vec<u8>, v: u64, chars: usize) {
    for i in (0..chars).rev() {
        out.push(BASE32[(v >> (5 * i) & 31) as usize]);
    }
}

pub(super) fn put_hex(out: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        out.push(HEX[(v >> (4 * i) & 15) as usize]);
    }
}
