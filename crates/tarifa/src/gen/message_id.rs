//! Message ids in Meta's shape: `wamid.` and a scrambled message number, the same in normalized
//! lines and webhook bodies.

use super::digits::put_base32;
use super::random::mix64;
use super::world::World;

/// A message id: `wamid.` and a scrambled message number.
pub(super) fn put_message_id(w: &World, out: &mut Vec<u8>, msg: u64) {
    out.extend_from_slice(b"wamid.HBgM");
    put_base32(out, mix64(msg ^ w.keys.id), 13);
}
