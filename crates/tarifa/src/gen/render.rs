//! Writing an event as a line: the normalized `inbound` / `outbound` / `status` events of
//! tarifa's input contract, by hand into a byte buffer (no serde on the hot path); events drawn
//! as webhooks go to [`super::webhook`].

use super::catalog::TEMPLATES;
use super::digits::{pair, put_pair, put_u64};
use super::event::{Ev, Kind, F_HOOK, F_POST, F_REFERRAL};
use super::message_id::put_message_id;
use super::users::Device;
use super::webhook;
use super::world::World;
use tarifa_core::time::{Instant, LocalDate, DAY, HOUR, MINUTE};

/// Renders events, remembering the date of the last one (most lines share it).
#[derive(Default)]
pub(super) struct Render {
    day: i64,
    date: [u8; 11],
    has_day: bool,
}

impl Render {
    /// `ev` as one line, with its newline.
    pub fn event(&mut self, w: &World, ev: &Ev, out: &mut Vec<u8>) {
        let hook = ev.flags & F_HOOK != 0;
        match ev.kind {
            Kind::Inbound if hook => webhook::inbound(w, ev, out),
            Kind::Inbound | Kind::Outbound => self.message(w, ev, out),
            _ if hook => webhook::status(w, ev, out),
            _ => self.status(w, ev, out),
        }
    }

    /// `2026-07-01T10:00:00Z`
    pub fn iso(&mut self, out: &mut Vec<u8>, unix: Instant) {
        let day = unix.div_euclid(DAY);
        if !self.has_day || day != self.day {
            let (y, m, d) = LocalDate(day as i32).ymd_parts();
            let y = y as u32;
            self.date = *b"0000-00-00T";
            self.date[0..2].copy_from_slice(pair(y / 100));
            self.date[2..4].copy_from_slice(pair(y % 100));
            self.date[5..7].copy_from_slice(pair(m));
            self.date[8..10].copy_from_slice(pair(d));
            self.day = day;
            self.has_day = true;
        }
        out.extend_from_slice(&self.date);
        let sod = unix.rem_euclid(DAY);
        put_pair(out, (sod / HOUR) as u32);
        out.push(b':');
        put_pair(out, (sod / MINUTE % 60) as u32);
        out.push(b':');
        put_pair(out, (sod % 60) as u32);
        out.push(b'Z');
    }

    /// An `inbound` or `outbound` event.
    fn message(&mut self, w: &World, ev: &Ev, out: &mut Vec<u8>) {
        out.extend_from_slice(if ev.kind == Kind::Inbound {
            b"{\"type\":\"inbound\",\"id\":\""
        } else {
            b"{\"type\":\"outbound\",\"id\":\""
        });
        put_message_id(w, out, ev.msg);
        out.extend_from_slice(b"\",\"at\":\"");
        self.iso(out, w.clock.instant(ev.at));
        out.extend_from_slice(&w.phone_of(ev.user).norm);
        put_u64(out, w.users.number[ev.user as usize]);
        out.push(b'"');
        if ev.kind == Kind::Inbound {
            put_referral(ev, out);
        } else {
            put_template_or_agent(ev, out);
        }
        out.extend_from_slice(b"}\n");
    }

    /// A `status` event.
    fn status(&mut self, w: &World, ev: &Ev, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"status\",\"id\":\"");
        put_message_id(w, out, ev.msg);
        out.extend_from_slice(b"\",\"at\":\"");
        self.iso(out, w.clock.instant(ev.at));
        out.extend_from_slice(b"\",\"status\":\"");
        out.extend_from_slice(ev.kind.status_name().as_bytes());
        out.push(b'"');
        if ev.kind == Kind::Failed {
            // Normalized statuses carry Meta's error codes as `errors` (input.rs).
            let (code, _) = ev.error();
            out.extend_from_slice(b",\"errors\":[");
            put_u64(out, code);
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// An inbound message's `referral` and `platform`, if it came from an ad or post.
fn put_referral(ev: &Ev, out: &mut Vec<u8>) {
    if ev.flags & F_REFERRAL == 0 {
        return;
    }
    out.extend_from_slice(if ev.flags & F_POST != 0 {
        b",\"referral\":{\"source_type\":\"post\"},\"platform\":\""
    } else {
        b",\"referral\":{\"source_type\":\"ad\"},\"platform\":\""
    });
    let device = Device::ALL[usize::from(ev.extra >> 8)];
    out.extend_from_slice(device.as_str().as_bytes());
    out.push(b'"');
}

/// An outbound message's `template`, or its Meta Business Agent `tokens`.
fn put_template_or_agent(ev: &Ev, out: &mut Vec<u8>) {
    if let Some((name, category)) = usize::from(ev.tmpl)
        .checked_sub(1)
        .and_then(|i| TEMPLATES.get(i))
    {
        out.extend_from_slice(b",\"template\":{\"name\":\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\",\"category\":\"");
        out.extend_from_slice(category.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    } else if ev.extra != 0 {
        out.extend_from_slice(b",\"agent\":{\"tokens\":");
        put_u64(out, u64::from(ev.extra));
        out.push(b'}');
    }
}
