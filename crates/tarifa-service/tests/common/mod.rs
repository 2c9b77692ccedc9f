//! A real `tarifa serve` on `127.0.0.1:0` with a fresh database (SQLite file in a temporary
//! directory, or a new PostgreSQL database when `TARIFA_TEST_DATABASE_URL` is set), driven over
//! HTTP with reqwest.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use tarifa_service::config::{BusinessWallet, ServeConfig};
use tarifa_service::Running;

pub const SECRET: &str = "test-app-secret";
pub const VERIFY: &str = "test-verify-token";
pub const TOKEN: &str = "test-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run a scenario on: SQLite always, PostgreSQL when its URL is set.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if std::env::var("TARIFA_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        out.push(Backend::Postgres);
    } else {
        eprintln!("PostgreSQL tests skipped: TARIFA_TEST_DATABASE_URL is not set");
    }
    out
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{n}_{nanos}", std::process::id())
}

/// A fresh database: its URL.
pub async fn fresh_database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("tarifa.db").display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let url = std::env::var("TARIFA_TEST_DATABASE_URL").unwrap();
            let name = format!("tarifa_test_{}", unique());
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let base = &url[..url.rfind('/').expect("a database URL ends with /name")];
            format!("{base}/{name}")
        }
    }
}

/// Drops a test database made by [`fresh_database`] (SQLite files go with their directory).
pub async fn drop_database(url: &str) {
    use sqlx::Connection;
    if !url.starts_with("postgres") {
        return;
    }
    // A URL may carry connection options (`?sslmode=…`) after the name.
    let url = url.split('?').next().unwrap_or(url);
    let (base, name) = url.rsplit_once('/').unwrap();
    let admin =
        std::env::var("TARIFA_TEST_DATABASE_URL").unwrap_or_else(|_| format!("{base}/postgres"));
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The rating config of the tests: a Spanish shop in EUR reselling at Meta's rate × 1.2 with a
/// minimum balance of 5 EUR for free service (seed 002's rules), and a postpaid business.
pub fn rating_config(dir: &Path) -> PathBuf {
    let rates = repo().join("data/rates");
    let text = format!(
        r#"
[[business]]
id = "shop"
currency = "EUR"
timezone = "Europe/Madrid"
primary_country = "ES"
price_list = "resale"

[[business]]
id = "post"
currency = "EUR"
timezone = "Europe/Madrid"

[[rate_card]]
file = "{rates}/eur-2026-07-01.csv"
[[tier_card]]
file = "{rates}/eur-tiers-2026-07-01-illustrative.csv"

[[price_list]]
id = "resale"
markup = "1.2"
min_balance_for_free_service = "5"
"#,
        rates = rates.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct TestApp {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub config: ServeConfig,
    pub dir: tempdir::Dir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("tarifa-test-{}", super::unique()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn config(database_url: String, rating: PathBuf, alert_url: Option<String>) -> ServeConfig {
    let mut wallets = BTreeMap::new();
    wallets.insert(
        "shop".to_string(),
        BusinessWallet {
            business: "shop".into(),
            low_balance_threshold: Some("5".parse().unwrap()),
            alert_url,
            ..Default::default()
        },
    );
    wallets.insert(
        "post".to_string(),
        BusinessWallet {
            business: "post".into(),
            prepaid: Some(false),
            ..Default::default()
        },
    );
    ServeConfig {
        rating_config: rating,
        database_url,
        listen: "127.0.0.1:0".parse().unwrap(),
        app_secret: SECRET.into(),
        verify_token: VERIFY.into(),
        api_tokens: vec![TOKEN.into()],
        body_limit_bytes: 256 * 1024,
        max_batch_events: 100,
        hold_days: 30,
        wallets,
        max_group: 512,
        linger: std::time::Duration::from_millis(3),
        history_days: 5,
        ca_file: None,
        // Recovery passes run on the tests' simulated clock, never on a timer.
        recovery: tarifa_service::runtime::recovery::RecoverySection {
            scheduler: false,
            ..Default::default()
        },
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, None).await
    }

    pub async fn spawn_with(backend: Backend, alert_url: Option<String>) -> TestApp {
        TestApp::spawn_configured(backend, alert_url, |_| {}).await
    }

    /// A service whose test config `edit` changes first.
    pub async fn spawn_configured(
        backend: Backend,
        alert_url: Option<String>,
        edit: impl FnOnce(&mut ServeConfig),
    ) -> TestApp {
        let dir = tempdir::Dir::new();
        let db = fresh_database(backend, dir.path()).await;
        let rating = rating_config(dir.path());
        let mut config = config(db, rating, alert_url);
        edit(&mut config);
        let running = tarifa_service::start(config.clone())
            .await
            .expect("start the service");
        TestApp {
            base: format!("http://{}", running.addr),
            running: Some(running),
            client: tarifa_service::runtime::https::client(
                std::time::Duration::from_secs(120),
                None,
            )
            .unwrap(),
            config,
            dir,
        }
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.running.take().unwrap().stop().await.unwrap();
        let running = tarifa_service::start(self.config.clone())
            .await
            .expect("restart");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        drop_database(&self.config.database_url).await;
    }

    pub fn app(&self) -> &std::sync::Arc<tarifa_service::App> {
        &self.running.as_ref().unwrap().app
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub fn store(&self) -> &tarifa_service::storage::Store {
        &self.running.as_ref().unwrap().app.store
    }

    /// POSTs a webhook body signed with the app secret.
    pub async fn webhook(&self, body: &str) -> reqwest::Response {
        let sig = tarifa_service::api::signature::sign(SECRET.as_bytes(), body.as_bytes());
        self.client
            .post(format!("{}/webhooks/meta", self.base))
            .header("x-hub-signature-256", sig)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    async fn get_response(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.get_response(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get_response(path).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn top_up(&self, business: &str, id: &str, amount: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/wallets/{business}/topups"),
            &json!({"id": id, "amount": amount}),
        )
        .await
    }

    pub async fn wallet(&self, business: &str) -> Value {
        let (status, w) = self.get(&format!("/v1/wallets/{business}")).await;
        assert_eq!(status, 200, "{w}");
        w
    }
}

/// A Meta status webhook for one message of `business`.
pub fn status_webhook(
    business: &str,
    id: &str,
    status: &str,
    at: i64,
    recipient: &str,
    extra: Value,
) -> String {
    let mut st =
        json!({"id": id, "status": status, "timestamp": at.to_string(), "recipient_id": recipient});
    if let (Value::Object(s), Value::Object(e)) = (&mut st, extra) {
        s.extend(e);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": business, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "34910000000", "phone_number_id": "pn-1"},
            "statuses": [st]
        }}]}]
    })
    .to_string()
}

/// A Meta inbound-message webhook.
pub fn inbound_webhook(business: &str, id: &str, from: &str, at: i64) -> String {
    inbound_text_webhook(business, id, from, at, "hola")
}

/// A Meta inbound-message webhook with the given text.
pub fn inbound_text_webhook(business: &str, id: &str, from: &str, at: i64, text: &str) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": business, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "34910000000", "phone_number_id": "pn-1"},
            "messages": [{"from": from, "id": id, "timestamp": at.to_string(), "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
}

pub fn now() -> i64 {
    tarifa_service::clock::now()
}

/// A local HTTPS server for tests: a CA made here (its PEM written to `ca_file`, for the
/// service's `[tls] ca_file`), a certificate it signed for `localhost` and 127.0.0.1, and a
/// router served over rustls. Nothing about it is a stand-in for TLS: the service's own client
/// verifies the chain and the name exactly as it would against Meta.
pub struct TestHttps {
    /// `https://localhost:PORT`
    pub base: String,
    pub ca_file: PathBuf,
    _dir: tempdir::Dir,
}

impl TestHttps {
    pub async fn serve(router: axum::Router) -> TestHttps {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tarifa test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let dir = tempdir::Dir::new();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls)),
        };
        tokio::spawn(async move { axum::serve(listener, router).await });
        TestHttps {
            base: format!("https://localhost:{port}"),
            ca_file,
            _dir: dir,
        }
    }
}

/// TCP connections that become TLS streams; a failed handshake (a client that does not trust
/// the test CA) is dropped and the next connection accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
