//! The raw shapes of input lines, as serde reads them: a normalized event line ([`RawLine`]) and
//! Meta's webhook body ([`RawEntry`] …). Nothing here is validated: `input` turns these into
//! events and words the errors; `fast_json` fills the same [`RawLine`] for the common lines.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;

/// A JSON string or number (Meta writes timestamps as strings, users may write numbers).
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum Scalar<'a> {
    #[serde(borrow)]
    Str(Cow<'a, str>),
    Int(i64),
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawTemplate<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawAgent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tokens: Option<u64>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawGroup<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<Cow<'a, str>>,
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum GroupRef<'a> {
    #[serde(borrow)]
    Id(Cow<'a, str>),
    #[serde(borrow)]
    Full(RawGroup<'a>),
}

/// Every field any line kind may carry; which are required depends on the kind. [`to_json_line`]
/// writes it too, so reader and writer cannot disagree on a name.
#[derive(Deserialize, Serialize, Default)]
pub(crate) struct RawLine<'a> {
    #[serde(rename = "type", borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) at: Option<Scalar<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) business: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) phone: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "write_true")]
    pub(crate) referral: Option<IgnoredAny>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) template: Option<TemplateField<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) recipient: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) agent: Option<RawAgent>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<GroupRef<'a>>,
    // status: what Meta's status webhook said.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) pricing: Option<RawPricing<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) conversation: Option<RawLineConversation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) errors: Option<Vec<u32>>,
    // account_update: the webhook's `event` and its object, as Meta writes them.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) event: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) volume_tier_info: Option<RawVolumeTier<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_international_rate_eligibility: Option<RawAuthIntl<'a>>,
    #[serde(borrow, skip_serializing)]
    pub(crate) object: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing)]
    pub(crate) entry: Option<Vec<RawEntry<'a>>>,
}

/// `template` is an object on outbound events and a name on `template_category` events.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum TemplateField<'a> {
    #[serde(borrow)]
    Name(Cow<'a, str>),
    #[serde(borrow)]
    Object(RawTemplate<'a>),
}

#[derive(Deserialize)]
pub(crate) struct RawEntry<'a> {
    #[serde(borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) time: Option<i64>,
    #[serde(borrow, default)]
    pub(crate) changes: Vec<RawChange<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawChange<'a> {
    #[serde(borrow)]
    pub(crate) field: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) value: Option<RawValue<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawValue<'a> {
    #[serde(borrow)]
    pub(crate) metadata: Option<RawMetadata<'a>>,
    #[serde(borrow, default)]
    pub(crate) messages: Vec<RawMessage<'a>>,
    #[serde(borrow, default)]
    pub(crate) statuses: Vec<RawStatus<'a>>,
    // template_category_update
    #[serde(borrow)]
    pub(crate) message_template_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) new_category: Option<Cow<'a, str>>,
    // account_update
    #[serde(borrow)]
    pub(crate) event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) volume_tier_info: Option<RawVolumeTier<'a>>,
    #[serde(borrow)]
    pub(crate) auth_international_rate_eligibility: Option<RawAuthIntl<'a>>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawVolumeTier<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) pricing_category: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) tier: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) effective_month: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawAuthIntl<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) start_time: Option<Scalar<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) exception_countries: Vec<RawExceptionCountry<'a>>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct RawExceptionCountry<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) country_code: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) start_time: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawMetadata<'a> {
    #[serde(borrow)]
    pub(crate) phone_number_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawMessage<'a> {
    #[serde(borrow)]
    pub(crate) from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) timestamp: Option<Scalar<'a>>,
    pub(crate) referral: Option<IgnoredAny>,
    #[serde(borrow)]
    pub(crate) group_id: Option<Cow<'a, str>>,
    /// The message type (`text`, `image`, `system`, `unsupported`, …).
    #[serde(borrow, rename = "type")]
    pub(crate) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) unsupported: Option<RawUnsupported<'a>>,
    #[serde(borrow)]
    pub(crate) text: Option<RawTextBody<'a>>,
    #[serde(borrow)]
    pub(crate) button: Option<RawButton<'a>>,
}

/// What an `unsupported` message was (`edit`, `poll_creation`, …), when Meta says.
#[derive(Deserialize)]
pub(crate) struct RawUnsupported<'a> {
    #[serde(borrow, rename = "type")]
    pub(crate) kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawTextBody<'a> {
    #[serde(borrow)]
    pub(crate) body: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawButton<'a> {
    #[serde(borrow)]
    pub(crate) text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawStatus<'a> {
    #[serde(borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) timestamp: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) recipient_id: Option<Cow<'a, str>>,
    /// `"group"` for a Groups API message: `recipient_id` is then the group.
    #[serde(borrow)]
    pub(crate) recipient_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) recipient_participant_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) pricing: Option<RawPricing<'a>>,
    #[serde(borrow)]
    pub(crate) conversation: Option<RawConversation<'a>>,
    #[serde(borrow, default)]
    pub(crate) errors: Vec<RawError<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawConversation<'a> {
    #[serde(borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) origin: Option<RawOrigin<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawOrigin<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawError<'a> {
    #[serde(borrow)]
    pub(crate) code: Option<Scalar<'a>>,
}

/// Meta's `pricing` object; a normalized status line carries it under the same names.
#[derive(Deserialize, Serialize, Default)]
pub(crate) struct RawPricing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) billable: Option<bool>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) pricing_model: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) pricing_type: Option<Cow<'a, str>>,
}

/// `conversation` of a normalized status: `{"id", "origin": "<category>"}` (flatter than Meta's
/// `origin: {type}`).
#[derive(Deserialize, Serialize, Default)]
pub(crate) struct RawLineConversation<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<Cow<'a, str>>,
}

/// `referral` is written `true` (any value but `null` means a referral).
fn write_true<S: Serializer>(_: &Option<IgnoredAny>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(true)
}
