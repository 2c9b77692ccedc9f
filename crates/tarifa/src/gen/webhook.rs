//! Writing an event as a raw Cloud API webhook body (spec §9.2): inbound messages with their
//! contact and Click-to-WhatsApp referral, statuses with their errors, `conversation` and
//! `pricing` objects.

use super::catalog::{HEADLINES, NAMES, TEXTS};
use super::clock::DAY;
use super::digits::{put_base32, put_hex, put_u64};
use super::event::{Ev, Kind, F_POST, F_PRICING, F_REFERRAL};
use super::message_id::put_message_id;
use super::random::mix64;
use super::world::World;
use tarifa_core::category::{BilledCategory, MetaPricingType, PricingModel};
use tarifa_core::time::{Instant, MINUTE};

/// What closes every body, after the `value`'s own fields.
const TAIL: &[u8] = b"},\"field\":\"messages\"}]}]}\n";

/// An inbound text message.
pub(super) fn inbound(w: &World, ev: &Ev, out: &mut Vec<u8>) {
    let user = ev.user as usize;
    let number = w.users.number[user];
    out.extend_from_slice(&w.phone_of(ev.user).hook);
    out.extend_from_slice(b"\"contacts\":[{\"profile\":{\"name\":\"");
    out.extend_from_slice(NAMES[usize::from(w.users.name[user])].as_bytes());
    out.extend_from_slice(b"\"},\"wa_id\":\"");
    put_u64(out, number);
    out.extend_from_slice(b"\"}],\"messages\":[{");
    if ev.flags & F_REFERRAL != 0 {
        put_referral(w, ev, out);
    }
    out.extend_from_slice(b"\"from\":\"");
    put_u64(out, number);
    out.extend_from_slice(b"\",\"id\":\"");
    put_message_id(w, out, ev.msg);
    out.extend_from_slice(b"\",\"timestamp\":\"");
    put_u64(out, w.clock.instant(ev.at) as u64);
    out.extend_from_slice(b"\",\"type\":\"text\",\"text\":{\"body\":\"");
    out.extend_from_slice(TEXTS[usize::from(ev.extra & 0xff)].as_bytes());
    out.extend_from_slice(b"\"}}]");
    out.extend_from_slice(TAIL);
}

/// The `referral` of a message from a Click-to-WhatsApp ad or post, derived from its number.
fn put_referral(w: &World, ev: &Ev, out: &mut Vec<u8>) {
    let h = mix64(ev.msg ^ w.keys.conv);
    out.extend_from_slice(b"\"referral\":{\"source_url\":\"https://fb.me/");
    put_base32(out, h, 9);
    out.extend_from_slice(b"\",\"source_id\":\"1202");
    put_u64(out, 10_000_000_000 + h % 90_000_000_000);
    out.extend_from_slice(b"\",\"source_type\":\"");
    out.extend_from_slice(if ev.flags & F_POST != 0 {
        b"post"
    } else {
        b"ad"
    });
    out.extend_from_slice(b"\",\"headline\":\"");
    out.extend_from_slice(HEADLINES[(h >> 40) as usize % HEADLINES.len()].as_bytes());
    out.extend_from_slice(
        b"\",\"body\":\"Tap to chat with us on WhatsApp\",\"media_type\":\"image\",\"image_url\":\"https://scontent.xx.fbcdn.net/v/t45.1600-4/",
    );
    put_hex(out, h);
    out.extend_from_slice(b".jpg\",\"ctwa_clid\":\"");
    put_base32(out, mix64(h), 13);
    put_base32(out, mix64(h ^ 1), 13);
    out.extend_from_slice(b"\"},");
}

/// A status of an outbound message.
pub(super) fn status(w: &World, ev: &Ev, out: &mut Vec<u8>) {
    out.extend_from_slice(&w.phone_of(ev.user).hook);
    out.extend_from_slice(b"\"statuses\":[{\"id\":\"");
    put_message_id(w, out, ev.msg);
    out.extend_from_slice(b"\",\"status\":\"");
    out.extend_from_slice(ev.kind.status_name().as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":\"");
    put_u64(out, w.clock.instant(ev.at) as u64);
    out.extend_from_slice(b"\",\"recipient_id\":\"");
    put_u64(out, w.users.number[ev.user as usize]);
    out.push(b'"');
    if ev.kind == Kind::Failed {
        put_errors(ev, out);
    } else if ev.flags & F_PRICING != 0 {
        let price = ev.price;
        if price.model == PricingModel::Cbp
            || (price.model == PricingModel::Pmp && price.kind == MetaPricingType::FreeEntryPoint)
        {
            put_conversation(w, ev, out);
        }
        put_pricing(ev, out);
    }
    out.extend_from_slice(b"}]");
    out.extend_from_slice(TAIL);
}

/// The `errors` of a failed status.
fn put_errors(ev: &Ev, out: &mut Vec<u8>) {
    let (code, title) = ev.error();
    out.extend_from_slice(b",\"errors\":[{\"code\":");
    put_u64(out, code);
    out.extend_from_slice(b",\"title\":\"");
    out.extend_from_slice(title.as_bytes());
    out.extend_from_slice(b"\",\"message\":\"");
    out.extend_from_slice(title.as_bytes());
    out.extend_from_slice(b"\",\"error_data\":{\"details\":\"");
    out.extend_from_slice(if code == 131_049 {
        b"In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
            as &[u8]
    } else {
        b"Message Undeliverable." as &[u8]
    });
    out.extend_from_slice(
        b"\"},\"href\":\"/documentation/business-messaging/whatsapp/support/error-codes\"}]",
    );
}

/// The `conversation` object: a conversation (CBP) or entry point window (PMP), its id derived
/// from the user and its start; the expiration only on `sent`.
fn put_conversation(w: &World, ev: &Ev, out: &mut Vec<u8>) {
    let price = ev.price;
    let salt = conversation_salt(price.category);
    out.extend_from_slice(b",\"conversation\":{\"id\":\"");
    let c = w.keys.conv ^ u64::from(ev.user) << 32 ^ u64::from(ev.conv);
    put_hex(out, mix64(c));
    put_hex(out, mix64(c ^ salt));
    out.push(b'"');
    if ev.kind == Kind::Sent {
        let expiration = conversation_expiration(w, ev);
        out.extend_from_slice(b",\"expiration_timestamp\":\"");
        put_u64(out, expiration as u64);
        out.push(b'"');
    }
    out.extend_from_slice(b",\"origin\":{\"type\":\"");
    out.extend_from_slice(if price.model == PricingModel::Pmp {
        b"referral_conversion" // the conversation of an entry point window
    } else {
        price.category.as_str().as_bytes()
    });
    out.extend_from_slice(b"\"}}");
}

/// The end of the conversation of `ev`, rounded up to the minute: 24 h, or 72 h for entry point
/// windows from 2023-03-01 (B-7, D-5).
fn conversation_expiration(w: &World, ev: &Ev) -> Instant {
    let price = ev.price;
    let entry_point =
        price.model == PricingModel::Pmp || price.category == BilledCategory::ReferralConversion;
    let window = if entry_point && w.clock.date(ev.conv) >= w.entry_point_72h_from {
        3 * DAY
    } else {
        DAY
    };
    let end = w.clock.instant(ev.conv) + Instant::from(window);
    (end + MINUTE - 1).div_euclid(MINUTE) * MINUTE
}

/// The `pricing` object.
fn put_pricing(ev: &Ev, out: &mut Vec<u8>) {
    let price = ev.price;
    out.extend_from_slice(if price.billable {
        b",\"pricing\":{\"billable\":true,\"pricing_model\":\"" as &[u8]
    } else {
        b",\"pricing\":{\"billable\":false,\"pricing_model\":\"" as &[u8]
    });
    out.extend_from_slice(price.model.as_str().as_bytes());
    out.push(b'"');
    if price.model == PricingModel::Pmp {
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(price.kind.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"category\":\"");
    out.extend_from_slice(price.category.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The number the second half of a conversation id is salted with, by category. Fixed: the ids
/// of earlier logs depend on it.
fn conversation_salt(category: BilledCategory) -> u64 {
    match category {
        BilledCategory::Marketing | BilledCategory::MarketingLite => 0,
        BilledCategory::Utility => 1,
        BilledCategory::Authentication => 2,
        BilledCategory::Service => 3,
        BilledCategory::ReferralConversion => 4,
        BilledCategory::UserInitiated => 5,
        BilledCategory::BusinessInitiated => 6,
        BilledCategory::AuthenticationInternational => 7,
        BilledCategory::Template | BilledCategory::MetaBusinessAgent => 8,
    }
}
