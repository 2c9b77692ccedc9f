//! Users' phone numbers in request bodies (quotes, carts, orders, redemptions) are read as
//! digits, once, at the edge: `+55 11 98765-0001` and `5511987650001` are one customer, as in the
//! events (`tarifa_core::input::phone_number`).

use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use tarifa_core::input::phone_number;

/// `#[serde(deserialize_with = "…")]` for a number field.
pub fn digits<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    Ok(phone_number(Cow::Owned(text)).into_owned())
}

/// `#[serde(default, deserialize_with = "…")]` for an optional number field.
pub fn digits_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text.map(|t| phone_number(Cow::Owned(t)).into_owned()))
}
