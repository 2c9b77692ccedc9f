//! The service's configuration: a TOML file (`tarifa serve --config serve.toml`) that points at
//! the rating config (`tarifa rate`'s file: businesses, rules, cards, price lists) and adds what
//! only a running service needs, with `TARIFA_*` environment variables on top (secrets are
//! better given that way than written in a file).

use crate::runtime::recovery::{RecoverySection, SenderKind};
use anyhow::{bail, Context, Result};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `serve.toml`, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// The rating config (relative to this file).
    pub rating_config: String,
    /// `sqlite://path` (relative paths are relative to this file) or `postgres://…`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub meta: MetaSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub wallet: WalletSection,
    #[serde(default)]
    pub ingest: IngestSection,
    /// Sales recovery (see docs/RECOVERY.md).
    #[serde(default)]
    pub recovery: RecoverySection,
    #[serde(default)]
    pub tls: TlsSection,
}

/// Outgoing TLS (the Cloud API sender, alert webhooks).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// A PEM bundle of CA certificates trusted besides the system's (relative to this file).
    pub ca_file: Option<String>,
}

fn default_database_url() -> String {
    "sqlite://tarifa.db".into()
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// Meta's webhook settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSection {
    /// The app secret that signs webhook bodies (`X-Hub-Signature-256`). Required.
    pub app_secret: Option<String>,
    /// The token Meta echoes in the verification handshake. Required.
    pub verify_token: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Bearer tokens accepted on `/v1`. Empty: `/v1` is refused (never open by accident).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Most events in one `POST /v1/events` batch.
    #[serde(default = "default_max_batch")]
    pub max_batch_events: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            tokens: Vec::new(),
            body_limit_bytes: default_body_limit(),
            max_batch_events: default_max_batch(),
        }
    }
}

fn default_body_limit() -> usize {
    1 << 20
}

fn default_max_batch() -> usize {
    1000
}

/// Wallet rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    /// How long a hold waits for its delivery webhook before it is released (Meta retries a
    /// message for up to 30 days).
    #[serde(default = "default_hold_days")]
    pub hold_days: i64,
    /// Per business; a business without an entry is prepaid with the defaults.
    #[serde(default)]
    pub business: Vec<BusinessWallet>,
}

impl Default for WalletSection {
    fn default() -> Self {
        WalletSection {
            hold_days: default_hold_days(),
            business: Vec::new(),
        }
    }
}

fn default_hold_days() -> i64 {
    30
}

/// One business's wallet.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessWallet {
    pub business: String,
    /// `false`: no holds, no 402 (postpaid: invoices only). Default `true`.
    pub prepaid: Option<bool>,
    /// The lowest available balance allowed (0, or negative for a credit line).
    pub floor: Option<Decimal>,
    /// Below this available balance a low-balance alert is sent.
    pub low_balance_threshold: Option<Decimal>,
    /// Minimum available balance to use free service messages (for example 5 USD).
    /// Default: the business's price list's `min_balance_for_free_service`.
    pub min_balance_for_free_service: Option<Decimal>,
    /// Where low-balance alerts are POSTed (JSON).
    pub alert_url: Option<String>,
}

/// Ingestion tuning.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Most commands written in one database transaction (group commit).
    #[serde(default = "default_group")]
    pub max_group: usize,
    /// Days of each conversation's events kept in memory to price deliveries and quotes (the
    /// longest free window is 72 h after a reply that may come 24 h after the ad click).
    #[serde(default = "default_history_days")]
    pub history_days: i64,
    /// Under load (the last group held more than one command), how long a group waits for more
    /// commands before it is committed, in milliseconds: fewer, larger commits cost less CPU and
    /// disk per event. 0 commits at once. A lone command is never kept waiting.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            max_group: default_group(),
            history_days: default_history_days(),
            linger_ms: default_linger_ms(),
        }
    }
}

fn default_linger_ms() -> u64 {
    3
}

fn default_group() -> usize {
    2048
}

fn default_history_days() -> i64 {
    5
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub rating_config: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub app_secret: String,
    pub verify_token: String,
    pub api_tokens: Vec<String>,
    pub body_limit_bytes: usize,
    pub max_batch_events: usize,
    pub hold_days: i64,
    pub wallets: BTreeMap<String, BusinessWallet>,
    pub max_group: usize,
    pub linger: std::time::Duration,
    pub history_days: i64,
    pub recovery: RecoverySection,
    /// Extra CA certificates for outgoing HTTPS (`[tls] ca_file`, `TARIFA_CA_FILE`).
    pub ca_file: Option<PathBuf>,
}

/// Reads `path` and applies the environment (`env` is passed in so tests need not touch the
/// process environment): `TARIFA_DATABASE_URL`, `TARIFA_LISTEN`, `TARIFA_APP_SECRET`,
/// `TARIFA_VERIFY_TOKEN`, `TARIFA_API_TOKENS` (comma-separated).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ServeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read service config {}", path.display()))?;
    let file: ServeFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    resolve(file, path.parent().unwrap_or(Path::new(".")), env)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// The environment as `load` sees it: a variable's value, if set.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn resolve(file: ServeFile, base: &Path, env: Env) -> Result<ServeConfig> {
    let database_url = database_url(
        env("TARIFA_DATABASE_URL").unwrap_or(file.database_url),
        base,
    )?;
    let listen = env("TARIFA_LISTEN").unwrap_or(file.listen);
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    let app_secret = required(
        env("TARIFA_APP_SECRET").or(file.meta.app_secret),
        "meta.app_secret (or TARIFA_APP_SECRET) is required to check webhook signatures",
    )?;
    let verify_token = required(
        env("TARIFA_VERIFY_TOKEN").or(file.meta.verify_token),
        "meta.verify_token (or TARIFA_VERIFY_TOKEN) is required for Meta's handshake",
    )?;
    check_limits(&file.api, &file.wallet, &file.ingest)?;
    let api_tokens = match env("TARIFA_API_TOKENS") {
        Some(list) => token_list(&list),
        None => file.api.tokens,
    };
    let recovery = recovery(file.recovery, env)?;
    let wallets = wallets(file.wallet.business)?;
    let ca_file = env("TARIFA_CA_FILE")
        .or(file.tls.ca_file)
        .map(|f| base.join(f));
    if let Some(path) = &ca_file {
        crate::runtime::https::load_ca(path)?;
    }
    Ok(ServeConfig {
        rating_config: base.join(&file.rating_config),
        database_url,
        listen,
        app_secret,
        verify_token,
        api_tokens,
        body_limit_bytes: file.api.body_limit_bytes,
        max_batch_events: file.api.max_batch_events,
        hold_days: file.wallet.hold_days,
        wallets,
        max_group: file.ingest.max_group,
        linger: std::time::Duration::from_millis(file.ingest.linger_ms),
        history_days: file.ingest.history_days,
        recovery,
        ca_file,
    })
}

/// A relative SQLite path is taken from the config file's folder; only SQLite and PostgreSQL
/// are known.
fn database_url(url: String, base: &Path) -> Result<String> {
    let url = match url.strip_prefix("sqlite://") {
        Some(p) if !p.starts_with('/') && !p.starts_with(':') => {
            format!("sqlite://{}", base.join(p).display())
        }
        _ => url,
    };
    if !url.starts_with("sqlite:")
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        bail!("database_url {url:?}: expected sqlite://… or postgres://…");
    }
    Ok(url)
}

/// A secret that must be given and not empty.
fn required(value: Option<String>, missing: &'static str) -> Result<String> {
    value.filter(|s| !s.is_empty()).context(missing)
}

/// `a, b,,` → `["a", "b"]`.
fn token_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// The bounds of the numeric settings.
fn check_limits(api: &ApiSection, wallet: &WalletSection, ingest: &IngestSection) -> Result<()> {
    if api.body_limit_bytes < 1024 {
        bail!("api.body_limit_bytes must be at least 1024");
    }
    if api.max_batch_events == 0 {
        bail!("api.max_batch_events must be at least 1");
    }
    if !(1..=90).contains(&wallet.hold_days) {
        bail!("wallet.hold_days must be between 1 and 90");
    }
    if !(2..=60).contains(&ingest.history_days) {
        bail!("ingest.history_days must be between 2 and 60");
    }
    if ingest.max_group == 0 {
        bail!("ingest.max_group must be at least 1");
    }
    if ingest.linger_ms > 1000 {
        bail!("ingest.linger_ms must be at most 1000");
    }
    Ok(())
}

/// The `[recovery]` section with the access token from the environment; the Cloud API sender
/// needs one.
fn recovery(mut recovery: RecoverySection, env: Env) -> Result<RecoverySection> {
    if let Some(token) = env("TARIFA_META_ACCESS_TOKEN") {
        recovery.access_token = Some(token);
    }
    recovery.validate()?;
    if recovery.sender == SenderKind::Meta
        && recovery.access_token.as_deref().unwrap_or("").is_empty()
    {
        bail!(
            "recovery.sender = \"meta\" needs recovery.access_token (or TARIFA_META_ACCESS_TOKEN)"
        );
    }
    Ok(recovery)
}

/// The wallets by business: each listed once, with a floor of 0 or below.
fn wallets(listed: Vec<BusinessWallet>) -> Result<BTreeMap<String, BusinessWallet>> {
    let mut wallets = BTreeMap::new();
    for w in listed {
        if w.floor.is_some_and(|floor| floor > Decimal::ZERO) {
            bail!(
                "wallet.business {:?}: floor must be 0 or negative",
                w.business
            );
        }
        if wallets.insert(w.business.clone(), w.clone()).is_some() {
            bail!("wallet.business {:?} is listed twice", w.business);
        }
    }
    Ok(wallets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<ServeConfig> {
        let file: ServeFile = toml::from_str(text)?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(file, Path::new("/srv"), &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    const MINIMAL: &str =
        "rating_config = \"config.toml\"\n[meta]\napp_secret = \"s\"\nverify_token = \"v\"\n";

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.database_url, "sqlite:///srv/tarifa.db");
        assert_eq!(c.rating_config, Path::new("/srv/config.toml"));
        assert_eq!(c.hold_days, 30);
        assert!(c.api_tokens.is_empty());
        assert_eq!(c.linger, std::time::Duration::from_millis(3));
        let at_once = parse(&format!("{MINIMAL}[ingest]\nlinger_ms = 0\n"), &[]).unwrap();
        assert_eq!(at_once.linger, std::time::Duration::ZERO);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = parse(
            MINIMAL,
            &[
                ("TARIFA_DATABASE_URL", "postgres://u@h/db"),
                ("TARIFA_API_TOKENS", "a, b,,"),
                ("TARIFA_APP_SECRET", "env-secret"),
                ("TARIFA_LISTEN", "127.0.0.1:0"),
            ],
        )
        .unwrap();
        assert_eq!(c.database_url, "postgres://u@h/db");
        assert_eq!(c.api_tokens, vec!["a", "b"]);
        assert_eq!(c.app_secret, "env-secret");
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn bad_settings_are_named() {
        let no_secret = parse("rating_config = \"c\"\n[meta]\nverify_token = \"v\"\n", &[]);
        assert!(format!("{:#}", no_secret.unwrap_err()).contains("meta.app_secret"));
        let floor = parse(
            &format!("{MINIMAL}[[wallet.business]]\nbusiness = \"b\"\nfloor = \"5\"\n"),
            &[],
        );
        assert!(format!("{:#}", floor.unwrap_err()).contains("floor must be 0 or negative"));
        let listen = parse(&format!("listen = \"nope\"\n{MINIMAL}"), &[]);
        assert!(format!("{:#}", listen.unwrap_err()).contains("listen \"nope\""));
        let linger = parse(&format!("{MINIMAL}[ingest]\nlinger_ms = 5000\n"), &[]);
        assert!(format!("{:#}", linger.unwrap_err()).contains("ingest.linger_ms"));
        let unknown = toml::from_str::<ServeFile>(&format!("{MINIMAL}colour = 1\n"));
        assert!(unknown.is_err());
    }

    #[test]
    fn recovery_settings_in_the_file_are_validated_by_name() {
        let store = "[recovery.store.shop]\nphone = \"pn-1\"\nmessage = \"hi\"\n";
        let ok = parse(&format!("{MINIMAL}{store}delay_minutes = 30\n"), &[]).unwrap();
        assert_eq!(ok.recovery.store["shop"].delay_minutes, 30);
        assert_eq!(ok.recovery.check_interval_minutes, 5);
        let late = parse(&format!("{MINIMAL}{store}delay_minutes = 90\n"), &[]);
        let message = format!("{:#}", late.unwrap_err());
        assert!(
            message.contains("recovery.store.shop.delay_minutes: must be between 5 and 60"),
            "{message}"
        );
        let meta = parse(&format!("{MINIMAL}[recovery]\nsender = \"meta\"\n"), &[]);
        assert!(format!("{:#}", meta.unwrap_err()).contains("TARIFA_META_ACCESS_TOKEN"));
        let with_token = parse(
            &format!("{MINIMAL}[recovery]\nsender = \"meta\"\n"),
            &[("TARIFA_META_ACCESS_TOKEN", "EAAG")],
        );
        assert!(with_token.is_ok());
    }
}
