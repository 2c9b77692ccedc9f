//! The fixed text each business phone's lines start with, made once per phone: the normalized
//! line's business, phone and user keys, and a webhook body's envelope up to the `value`'s own
//! fields.

/// The head of a phone's normalized lines, between the time and the user:
/// `","business":"waba-1","phone":"pn-1-1","user":"`.
pub(super) fn normalized(waba: &str, phone_id: &str) -> Vec<u8> {
    format!("\",\"business\":\"{waba}\",\"phone\":\"{phone_id}\",\"user\":\"").into_bytes()
}

/// The head of a phone's webhook bodies, up to the `value`'s own fields:
/// `{"object":…,"entry":[{"id":"waba-1","changes":[{"value":{…,"metadata":{…}},`.
pub(super) fn webhook(waba: &str, phone_id: &str, display: &str) -> Vec<u8> {
    format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"{waba}\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"{display}\",\"phone_number_id\":\"{phone_id}\"}},"
    )
    .into_bytes()
}
