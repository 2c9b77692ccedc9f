//! How much of a conversation key's history a live service must replay to rate one message
//! exactly as the replay of the whole history would ([`Rater::finish_for`](super::Rater::finish_for)).
//!
//! Rating one message depends on the other events of its key only through the state the era
//! rules keep while walking the key (see [`conversations`](super::conversations)): open
//! conversations (B-1 … B-9, C-1 … C-11, D-8), entry-point windows (C-10, D-5, D-17) and the
//! customer service window (1-6, D-2, D-6, D-16). Conversations and entry-point windows chain
//! (whether one opens depends on whether the previous one is still open), so in general only the
//! whole history decides them. One case is bounded, and it is the common one:
//!
//! * the target's events (every record and status with its id) are all at or after
//!   [`PER_MESSAGE_SETTLED`], three days after per-message pricing began (D-1): whatever the
//!   WABA's time zone, the message is rated under era D, and no conversation of era C (at most
//!   24 h after a start before 2025-07-01 local) is still open for D-8;
//! * no user message of the history came through an entry point (`referral`): then no
//!   entry-point window exists (C-9, D-5 need a referral), and era D keeps no other state but
//!   the customer service window;
//! * the target is not a group message (D-10 rates those per member).
//!
//! Then the message needs only its own events, the user messages of the 24 h before the instant
//! its window is judged (delivery or send, both between its first and last event), those user
//! messages' duplicates (dedupe keeps the earliest copy of an id), and the template category
//! changes (1-5). [`lookback`] picks exactly these, or says the whole history is needed.

use super::conversations::PMP_START;
use crate::input::Event;
use crate::time::{Instant, DAY};

/// From this instant on every time zone is at least two days into per-message pricing (D-1)
/// and every era-C conversation has expired: 2025-07-04T00:00:00Z.
pub const PER_MESSAGE_SETTLED: Instant = (PMP_START.0 as Instant + 3) * DAY;

/// The events of `events` that rate the message `target` exactly as all of them do, by their
/// position in `events`; `None` when only the whole history can (see the module docs).
///
/// `events` is what the caller would otherwise replay: the key's history, the template category
/// changes of its business and any hypothetical events (a quote's message).
pub fn lookback<'a, 'e: 'a, I>(events: I, target: &str) -> Option<Vec<usize>>
where
    I: IntoIterator<Item = &'a Event<'e>>,
    I::IntoIter: Clone,
{
    let events = events.into_iter();
    let (mut first, mut last) = (Instant::MAX, Instant::MIN);
    // Positions of the target's own events, found once (ids are compared in this pass only).
    let mut own = Vec::new();
    for (i, e) in events.clone().enumerate() {
        match e {
            Event::Inbound(i) if i.referral => return None,
            Event::Outbound(o) if same_id(&o.id, target) => {
                if o.group.is_some() {
                    return None;
                }
                first = first.min(o.at);
                last = last.max(o.at);
                own.push(i);
            }
            Event::Status(s) if same_id(&s.id, target) => {
                first = first.min(s.at);
                last = last.max(s.at);
                own.push(i);
            }
            _ => {}
        }
    }
    if first == Instant::MAX || first < PER_MESSAGE_SETTLED {
        return None;
    }
    // 1-6: a window judged at `t` is open when the last user message at or before `t` is less
    // than 24 h old; `t` is between `first` and `last`.
    let in_window = |at: Instant| at > first - DAY && at <= last;
    let mut picked = Vec::new();
    let mut inbound_ids = Vec::new();
    let mut own = own.into_iter().peekable();
    for (i, e) in events.clone().enumerate() {
        let keep = match e {
            Event::Outbound(_) | Event::Status(_) => own.next_if_eq(&i).is_some(),
            Event::TemplateCategory(_) => true,
            Event::Inbound(m) if in_window(m.at) => {
                inbound_ids.push(&*m.id);
                true
            }
            Event::Inbound(_) | Event::AccountUpdate(_) | Event::Ignored => false,
        };
        if keep {
            picked.push(i);
        }
    }
    if !inbound_ids.is_empty() {
        // Copies of a picked user message from outside the window: the earliest copy wins.
        let mut extra = Vec::new();
        for (i, e) in events.enumerate() {
            if let Event::Inbound(m) = e {
                if !in_window(m.at) && inbound_ids.contains(&&*m.id) {
                    extra.push(i);
                }
            }
        }
        if !extra.is_empty() {
            picked.extend(extra);
            picked.sort_unstable();
        }
    }
    Some(picked)
}

/// The last 8 bytes of an id as a number (the id zero-filled on the left when shorter): ids of
/// one recipient tend to share a long head (Meta's wamids start with the recipient's number in
/// base64; a business's own ids, a common prefix) and differ at the end, so two ids with equal
/// tails are almost always the same id.
pub fn id_tail(id: &str) -> u64 {
    let bytes = id.as_bytes();
    let mut tail = [0u8; 8];
    let n = bytes.len().min(8);
    tail[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(tail)
}

/// The [`id_tail`] of a record's or status's message; `None` for any other event.
pub fn message_tail(event: &Event<'_>) -> Option<u64> {
    match event {
        Event::Outbound(o) => Some(id_tail(&o.id)),
        Event::Status(s) => Some(id_tail(&s.id)),
        _ => None,
    }
}

/// Whether [`lookback`] for a target whose [`id_tail`] is `target_tail` looks at an event whose
/// [`message_tail`] is `tail` at all. It decides and picks from user messages, template category
/// changes and the target's own records and statuses only; the records and statuses of other
/// messages never change its answer. So a service may leave those out before calling it, telling
/// them apart by a number it keeps beside each event, without reading the events themselves: the
/// picks are the same events (property test `lookback_over_a_key_rates_like_the_whole_history`).
pub fn may_concern(tail: Option<u64>, target_tail: u64) -> bool {
    tail.is_none_or(|t| t == target_tail)
}

/// `a == b`, tail first (this pass compares the target with every record and status given).
fn same_id(a: &str, b: &str) -> bool {
    a.len() == b.len() && id_tail(a) == id_tail(b) && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_line;

    fn events(text: &str) -> Vec<Event<'static>> {
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            parse_line(line.as_bytes(), &mut |e| out.push(e.into_owned())).unwrap();
        }
        out
    }

    #[test]
    fn ids_are_equal_only_when_every_byte_is() {
        let wamid = "wamid.HBgLMzQ2MDAwMDAwMDAVAgARGBI5QzFBMjM0NTY3ODkwQUJDREVGAA==";
        assert!(same_id(wamid, &String::from(wamid)));
        assert!(same_id("", ""));
        assert!(same_id("m-1", "m-1"));
        assert!(!same_id("m-1", "m-2"));
        assert!(!same_id("m-1", "m-10"));
        // Same tail, different head; same head, different tail.
        assert!(!same_id(&wamid.replace("HBgL", "HBgM"), wamid));
        assert!(!same_id(&wamid.replace("AA==", "AB=="), wamid));
        assert_eq!(id_tail("m-1"), u64::from_be_bytes(*b"\0\0\0\0\0m-1"));
        assert_eq!(id_tail("AA==1234567"), u64::from_be_bytes(*b"=1234567"));
    }

    #[test]
    fn per_message_history_is_cut_to_the_window() {
        let e = events(
            r#"
            {"type":"inbound","id":"in.1","at":"2025-09-01T08:00:00Z","business":"b","phone":"p","user":"u"}
            {"type":"outbound","id":"out.1","at":"2025-09-01T09:00:00Z","business":"b","phone":"p","user":"u","template":{"name":"t","category":"utility"}}
            {"type":"status","id":"out.1","at":"2025-09-01T09:00:05Z","status":"delivered"}
            {"type":"inbound","id":"in.2","at":"2025-09-03T08:00:00Z","business":"b","phone":"p","user":"u"}
            {"type":"outbound","id":"out.2","at":"2025-09-03T09:00:00Z","business":"b","phone":"p","user":"u","template":{"name":"t","category":"utility"}}
            {"type":"status","id":"out.2","at":"2025-09-03T09:00:05Z","status":"delivered"}
            {"type":"inbound","id":"in.1","at":"2025-09-03T08:30:00Z","business":"b","phone":"p","user":"u"}
            "#,
        );
        assert_eq!(lookback(&e, "out.2"), Some(vec![0, 3, 4, 5, 6]));
        assert_eq!(lookback(&e, "out.1"), Some(vec![0, 1, 2, 6]));
    }

    #[test]
    fn entry_points_conversation_eras_and_groups_need_the_whole_history() {
        let referral = events(
            r#"
            {"type":"inbound","id":"in.1","at":"2025-09-01T08:00:00Z","business":"b","phone":"p","user":"u","referral":{}}
            {"type":"outbound","id":"out.1","at":"2025-09-03T09:00:00Z","business":"b","phone":"p","user":"u"}
            "#,
        );
        assert_eq!(lookback(&referral, "out.1"), None);
        let era_c = events(
            r#"
            {"type":"outbound","id":"out.1","at":"2025-07-02T09:00:00Z","business":"b","phone":"p","user":"u"}
            {"type":"status","id":"out.1","at":"2025-07-05T09:00:00Z","status":"delivered"}
            "#,
        );
        assert_eq!(lookback(&era_c, "out.1"), None);
        let group = events(
            r#"
            {"type":"outbound","id":"out.g","at":"2025-09-03T09:00:00Z","business":"b","phone":"p","group":{"id":"g","members":["u"]}}
            "#,
        );
        assert_eq!(lookback(&group, "out.g"), None);
        assert_eq!(lookback(&group, "out.unknown"), None);
    }
}
