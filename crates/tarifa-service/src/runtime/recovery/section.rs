//! The `[recovery]` section of `serve.toml`: the scheduler's timing, where messages go, the
//! opt-out keywords, and per-store settings that the API may override later.

use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;
use tarifa_core::recovery::RecoveryConfig;

/// `[recovery]` of `serve.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySection {
    /// How often the scheduler looks for due recoveries (every 5 minutes by default).
    #[serde(default = "default_interval")]
    pub check_interval_minutes: u32,
    /// Run the scheduler's timer in this instance (`false`: passes only through
    /// `POST /v1/recovery/run`, e.g. from an external cron, or in tests on a simulated clock).
    #[serde(default = "yes")]
    pub scheduler: bool,
    /// `outbox` (record the messages, send nothing: demos and tests) or `meta` (Cloud API).
    #[serde(default)]
    pub sender: SenderKind,
    /// The Graph API base for `sender = "meta"`.
    #[serde(default = "default_graph")]
    pub graph_url: String,
    /// The Cloud API token (better: `TARIFA_META_ACCESS_TOKEN`).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Inbound texts (case and surrounding spaces ignored) that stop recovery messages.
    #[serde(default = "default_stop_keywords")]
    pub stop_keywords: Vec<String>,
    /// Per store (business id): the settings the API can override.
    #[serde(default)]
    pub store: BTreeMap<String, RecoveryConfig>,
}

impl Default for RecoverySection {
    fn default() -> Self {
        RecoverySection {
            check_interval_minutes: default_interval(),
            scheduler: true,
            sender: SenderKind::default(),
            graph_url: default_graph(),
            access_token: None,
            stop_keywords: default_stop_keywords(),
            store: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    #[default]
    Outbox,
    Meta,
}

fn yes() -> bool {
    true
}
fn default_interval() -> u32 {
    5
}
fn default_graph() -> String {
    "https://graph.facebook.com/v23.0".into()
}
fn default_stop_keywords() -> Vec<String> {
    [
        "STOP",
        "PARAR",
        "SAIR",
        "CANCELAR",
        "DESCADASTRAR",
        "BAJA",
        "UNSUBSCRIBE",
    ]
    .map(String::from)
    .to_vec()
}

impl RecoverySection {
    /// Checks the section; errors name `recovery.store.<business>.<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(1..=60).contains(&self.check_interval_minutes) {
            anyhow::bail!("recovery.check_interval_minutes must be between 1 and 60");
        }
        for (business, config) in &self.store {
            if let Some(e) = config.validate().first() {
                anyhow::bail!("recovery.store.{business}.{e}");
            }
        }
        Ok(())
    }

    /// Whether an inbound text is one of the opt-out keywords.
    pub(super) fn is_stop(&self, text: &str) -> bool {
        let t = text.trim();
        self.stop_keywords.iter().any(|k| k.eq_ignore_ascii_case(t))
    }
}
