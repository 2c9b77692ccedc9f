//! A database written by the previous release (0.1, the service before its restructure into
//! layers) is read by this one, on SQLite and on PostgreSQL.
//!
//! The fixtures in `tests/fixtures/release-0.1/` were recorded by its `record.sh`: the README's
//! wallet and sales-recovery flows against that release's `tarifa serve` with `samples/serve.toml`
//! and `samples/config.toml`, then its answers to the read endpoints, one JSON file each, with
//! the database (`sqlite/tarifa.db`, `postgres/dump.sql`). Here this release serves a copy of that
//! database with the same configuration and must give the same answers, keep the migrations the
//! old one recorded (and run none again), and write to the upgraded schema.

mod common;

use common::tempdir::Dir;
use common::Backend;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The API token of `samples/serve.toml`.
const TOKEN: &str = "sample-token";

/// The read endpoints the recording saved (under `/v1/`), each in `<path with _ for />.json`.
const ENDPOINTS: [&str; 7] = [
    "wallets/waba-eu",
    "wallets/waba-eu/transactions",
    "wallets/waba-br",
    "invoices/waba-eu/2026-11",
    "reconciliation/waba-eu/2026-11",
    "stores/waba-eu/recoveries",
    "stores/waba-eu/recovery/report",
];

fn fixtures(backend: Backend) -> PathBuf {
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/release-0.1")
        .join(dir)
}

/// The recorded answers are those of [`ENDPOINTS`], each compared below.
fn check_every_answer_is_compared(backend: Backend) {
    let mut files: Vec<String> = std::fs::read_dir(fixtures(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = ENDPOINTS
        .iter()
        .map(|e| format!("{}.json", e.replace('/', "_")))
        .collect();
    expected.sort();
    assert_eq!(files, expected);
}

/// The previous release's answer to `GET /v1/<endpoint>`.
fn recorded(backend: Backend, endpoint: &str) -> Value {
    let file = fixtures(backend).join(format!("{}.json", endpoint.replace('/', "_")));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file:?}: {e}"))
}

/// A copy of the previous release's database: the SQLite file copied into `dir` (the fixture
/// itself is never opened), or a new PostgreSQL database loaded from the dump. Its URL.
async fn old_database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => {
            let file = dir.join("tarifa.db");
            std::fs::copy(fixtures(backend).join("tarifa.db"), &file).unwrap();
            format!("sqlite://{}", file.display())
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let url = common::fresh_database(backend, dir).await;
            // `pg_dump --inserts` output: SQL, but for psql's `\restrict` and `\unrestrict`.
            let dump = std::fs::read_to_string(fixtures(backend).join("dump.sql")).unwrap();
            let sql: Vec<&str> = dump.lines().filter(|l| !l.starts_with('\\')).collect();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.join("\n")))
                .execute(&mut conn)
                .await
                .expect("load the previous release's dump");
            conn.close().await.unwrap();
            url
        }
    }
}

/// The recording's configuration (`samples/serve.toml` and `samples/config.toml`, card paths
/// made absolute as `record.sh` does) on `database_url`, listening on any free port.
fn sample_config(dir: &Path, database_url: &str) -> tarifa_service::config::ServeConfig {
    let repo = common::repo();
    let samples = repo.join("samples");
    let rating = std::fs::read_to_string(samples.join("config.toml")).unwrap();
    let rates = format!("\"{}/data/rates", repo.display());
    std::fs::write(
        dir.join("config.toml"),
        rating.replace("\"../data/rates", &rates),
    )
    .unwrap();
    let serve: Vec<String> = std::fs::read_to_string(samples.join("serve.toml"))
        .unwrap()
        .lines()
        .map(|line| {
            if line.starts_with("database_url = ") {
                format!("database_url = \"{database_url}\"")
            } else if line.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\"".to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    let path = dir.join("serve.toml");
    std::fs::write(&path, serve.join("\n")).unwrap();
    tarifa_service::config::load(&path, &|_| None).expect("the sample configuration")
}

/// The running service of the test, on the old database.
struct Service {
    running: tarifa_service::Running,
    base: String,
    client: reqwest::Client,
}

impl Service {
    async fn start(config: &tarifa_service::config::ServeConfig) -> Service {
        let running = tarifa_service::start(config.clone())
            .await
            .expect("this release starts on the previous release's database");
        Service {
            base: format!("http://{}/v1/", running.addr),
            running,
            client: tarifa_service::runtime::https::client(
                std::time::Duration::from_secs(120),
                None,
            )
            .unwrap(),
        }
    }

    async fn get(&self, endpoint: &str) -> Value {
        let r = self.client.get(format!("{}{endpoint}", self.base));
        let r = r.bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {endpoint}");
        r.json().await.unwrap()
    }

    async fn post(&self, endpoint: &str, body: Value) -> Value {
        let r = self.client.post(format!("{}{endpoint}", self.base));
        let r = r.bearer_auth(TOKEN).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let answer = r.json().await.unwrap_or(Value::Null);
        assert!(
            (200..300).contains(&status),
            "POST {endpoint}: {status} {answer}"
        );
        answer
    }
}

/// The latest instant a hold of the recorded wallet expires at.
fn last_hold_expiry(wallet: &Value) -> i64 {
    let holds = wallet["holds"].as_array().unwrap();
    holds
        .iter()
        .map(|h| h["expires_at"].as_i64().unwrap())
        .max()
        .unwrap_or(i64::MAX)
}

fn decimal(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// The wallets and their transactions: as recorded while the recorded hold is live (it was made
/// for 30 days, `hold_days`). Once it has expired, the service releases it at start (its timer
/// runs every second), so: no hold, `available` = `posted` (nothing pending), `posted` as
/// recorded, and the recorded transactions followed by the expiry of each recorded hold. (That
/// branch can be run before then with libfaketime: `FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f
/// +40d` on the test binary.)
async fn check_wallets(service: &Service, backend: Backend) {
    assert_eq!(
        service.get("wallets/waba-br").await,
        recorded(backend, "wallets/waba-br")
    );
    let wallet = recorded(backend, "wallets/waba-eu");
    let transactions = recorded(backend, "wallets/waba-eu/transactions");
    let expiry = last_hold_expiry(&wallet);
    let now = tarifa_service::clock::now();
    if now + 60 < expiry {
        assert_eq!(service.get("wallets/waba-eu").await, wallet);
        assert_eq!(
            service.get("wallets/waba-eu/transactions").await,
            transactions
        );
        return;
    }
    if now < expiry + 5 {
        eprintln!(
            "the recorded hold expires at {expiry}, about now: wallet of waba-eu not compared"
        );
        return;
    }
    let mut live = service.get("wallets/waba-eu").await;
    for _ in 0..50 {
        if live["holds"].as_array().is_some_and(|h| h.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        live = service.get("wallets/waba-eu").await;
    }
    assert_eq!(live["holds"], json!([]), "{live}");
    assert_eq!(
        decimal(&live["posted"]),
        decimal(&wallet["posted"]),
        "{live}"
    );
    assert_eq!(
        decimal(&live["available"]),
        decimal(&live["posted"]),
        "{live}"
    );
    let now_listed = service.get("wallets/waba-eu/transactions").await;
    let (old, new) = (
        transactions["transactions"].as_array().unwrap(),
        now_listed["transactions"].as_array().unwrap(),
    );
    assert_eq!(&new[..old.len()], &old[..], "{now_listed}");
    // Each expired hold: `{"Expired": {"at": its expiry, "pending_id": the hold}}`.
    let expired: Vec<&Value> = new[old.len()..]
        .iter()
        .map(|t| &t["kind"]["Expired"])
        .collect();
    let holds: Vec<Value> = wallet["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!({"at": h["expires_at"], "pending_id": h["transfer"]}))
        .collect();
    assert_eq!(expired, holds.iter().collect::<Vec<_>>(), "{now_listed}");
}

/// The invoice, the reconciliation and sales recovery: as recorded. The recovery endpoints'
/// period defaults to the month so far (store-local), which was the recording's day then and
/// moves on with the clock; asked for the period of the recorded report (which it states), they
/// answer for the same days as the recording did, whenever the test runs.
async fn check_reads(service: &Service, backend: Backend) {
    for endpoint in ["invoices/waba-eu/2026-11", "reconciliation/waba-eu/2026-11"] {
        assert_eq!(
            service.get(endpoint).await,
            recorded(backend, endpoint),
            "{endpoint}"
        );
    }
    let report = recorded(backend, "stores/waba-eu/recovery/report");
    let period = format!(
        "?from={}&to={}",
        report["from"].as_str().unwrap(),
        report["to"].as_str().unwrap()
    );
    for endpoint in [
        "stores/waba-eu/recoveries",
        "stores/waba-eu/recovery/report",
    ] {
        assert_eq!(
            service.get(&format!("{endpoint}{period}")).await,
            recorded(backend, endpoint),
            "{endpoint}"
        );
    }
}

/// The versions in `tarifa_migrations`: every one of the dialect, all applied before this test
/// started (by the previous release: none ran again).
async fn check_migrations(url: &str, backend: Backend, started: i64) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT version, applied_at FROM tarifa_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    let last = match backend {
        Backend::Sqlite => 5,
        Backend::Postgres => 6,
    };
    let versions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(versions, (1..=last).collect::<Vec<i64>>());
    assert!(rows.iter().all(|r| r.1 < started), "{rows:?}");
}

/// This release writes to the upgraded schema (a top-up: the ledger's log; a message and its
/// delivery: events, a hold, a charge) and reads it back, after a restart too.
async fn check_writable(service: Service, config: &tarifa_service::config::ServeConfig) {
    let posted = decimal(&service.get("wallets/waba-eu").await["posted"]);
    service
        .post(
            "wallets/waba-eu/topups",
            json!({"id": "compat-1", "amount": "5"}),
        )
        .await;
    let at = tarifa_service::clock::now() - 60;
    let outbound = json!({"type": "outbound", "id": "wamid.compat-1", "at": at, "business": "waba-eu",
        "phone": "pn-eu", "user": "34600000009", "template": {"name": "promo", "category": "utility"}});
    let delivered =
        json!({"type": "status", "id": "wamid.compat-1", "at": at + 5, "status": "delivered"});
    service.post("events", json!([outbound])).await;
    service.post("events", json!([delivered])).await;
    service.running.stop().await.unwrap();
    let service = Service::start(config).await;
    let listed = service.get("wallets/waba-eu/transactions").await;
    let transfers = listed["transactions"].as_array().unwrap();
    let amount = |id: &str| {
        let transfer = transfers.iter().find(|t| t["transfer"] == id);
        decimal(&transfer.unwrap_or_else(|| panic!("{id}: {listed}"))["amount"])
    };
    assert!(
        transfers
            .iter()
            .any(|t| t["transfer"] == "hold:wamid.compat-1"),
        "{listed}"
    );
    let (topup, price) = (amount("topup:compat-1"), amount("capture:wamid.compat-1"));
    assert_eq!(topup, Decimal::from(5));
    let wallet = service.get("wallets/waba-eu").await;
    assert_eq!(
        decimal(&wallet["posted"]),
        posted + topup - price,
        "{wallet}"
    );
    service.running.stop().await.unwrap();
}

async fn previous_release_is_read(backend: Backend) {
    check_every_answer_is_compared(backend);
    let started = tarifa_service::clock::now();
    let dir = Dir::new();
    let url = old_database(backend, dir.path()).await;
    let config = sample_config(dir.path(), &url);
    let service = Service::start(&config).await;
    check_wallets(&service, backend).await;
    check_reads(&service, backend).await;
    check_migrations(&url, backend, started).await;
    check_writable(service, &config).await;
    common::drop_database(&url).await;
}

#[tokio::test]
async fn sqlite_database_of_the_previous_release_is_read_and_written() {
    previous_release_is_read(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_database_of_the_previous_release_is_read_and_written() {
    if !common::backends().contains(&Backend::Postgres) {
        eprintln!("compatibility with PostgreSQL not checked: TARIFA_TEST_DATABASE_URL is not set");
        return;
    }
    previous_release_is_read(Backend::Postgres).await;
}
