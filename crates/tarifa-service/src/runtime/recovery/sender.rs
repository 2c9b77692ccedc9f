//! Where recovery messages leave: an outbox that keeps them (demos, tests) or Meta's Cloud API.
//! Both answer with the message id the delivery webhooks will name.

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use tarifa_core::recovery::Channel;

/// A recovery message to send.
#[derive(Clone, Debug, Serialize)]
pub struct Outgoing {
    pub recovery: String,
    /// The business phone number id.
    pub phone: String,
    pub to: String,
    pub channel: Channel,
    /// Free-form text, or the template's rendered parameters.
    pub text: String,
    pub template: Option<(String, String, Vec<String>)>,
}

/// Where recovery messages go. Returns Meta's message id (wamid).
pub trait Sender: Send + Sync {
    fn send<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;
}

/// Sends nothing: the message is kept in the recovery's record (samples, demos, tests).
pub struct Outbox;

impl Sender for Outbox {
    fn send<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(async move { Ok(format!("wamid.outbox.{}", message.recovery)) })
    }
}

/// Meta's Cloud API: `POST {graph}/{phone-number-id}/messages`.
pub struct CloudApi {
    pub graph_url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Sender for CloudApi {
    fn send<'a>(
        &'a self,
        m: &'a Outgoing,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(self.post(m))
    }
}

impl CloudApi {
    async fn post(&self, m: &Outgoing) -> Result<String> {
        let url = format!(
            "{}/{}/messages",
            self.graph_url.trim_end_matches('/'),
            m.phone
        );
        let response = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .json(&message_body(m))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(anyhow!("Cloud API answered {status}: {answer}"));
        }
        answer["messages"][0]["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("Cloud API answer without messages[0].id: {answer}"))
    }
}

/// The Cloud API request body: a template with its body parameters, or a text.
fn message_body(m: &Outgoing) -> Value {
    match &m.template {
        Some((name, language, params)) => json!({
            "messaging_product": "whatsapp", "to": m.to, "type": "template",
            "biz_opaque_callback_data": m.recovery,
            "template": {"name": name, "language": {"code": language}, "components": [{
                "type": "body",
                "parameters": params.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>()
            }]}
        }),
        None => json!({
            "messaging_product": "whatsapp", "to": m.to, "type": "text",
            "biz_opaque_callback_data": m.recovery,
            "text": {"body": m.text}
        }),
    }
}
