//! The real `tarifa serve` binary, driven from outside.
//!
//! Crash safety (issue 3, point 8): the server is killed with SIGKILL while webhooks and sends are
//! coming in, then restarted on the same database. Every event that was acknowledged before the
//! kill must be stored, the ledger must balance, no message may be charged twice, and every hold
//! must still be resolved exactly once.
//!
//! The load generator (`tarifa load`, which BENCHMARKS.md relies on): every request it sends is
//! answered and stored.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tarifa_core::ledger::{Ledger, Resolution};
use tarifa_service::storage::Store;

const SECRET: &str = "crash-secret";
const TOKEN: &str = "crash-token";
const USER: &str = "34600000002";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_configs(dir: &Path) -> PathBuf {
    let rates = repo().join("data/rates");
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[[business]]\nid = \"shop\"\ncurrency = \"EUR\"\ntimezone = \"Europe/Madrid\"\nprice_list = \"resale\"\n\n\
             [[rate_card]]\nfile = \"{}/eur-2026-07-01.csv\"\n\n[[price_list]]\nid = \"resale\"\nmarkup = \"1.2\"\n",
            rates.display()
        ),
    )
    .unwrap();
    let serve = dir.join("serve.toml");
    std::fs::write(
        &serve,
        "rating_config = \"config.toml\"\n[meta]\napp_secret = \"crash-secret\"\nverify_token = \"v\"\n\
         [api]\ntokens = [\"crash-token\"]\n",
    )
    .unwrap();
    serve
}

struct Server {
    child: tokio::process::Child,
    base: String,
}

async fn start(config: &Path, db: &str) -> Server {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tarifa"))
        .args(["serve", "--config"])
        .arg(config)
        .env("TARIFA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TARIFA_DATABASE_URL", db)
        .env("TARIFA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start tarifa serve");
    let base = format!("http://127.0.0.1:{port}");
    let client =
        tarifa_service::runtime::https::client(std::time::Duration::from_secs(120), None).unwrap();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return Server { child, base };
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tarifa serve did not become healthy");
}

fn delivered(id: &str, at: i64) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "shop", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "pn-1"},
        "statuses": [{"id": id, "status": "delivered", "timestamp": at.to_string(), "recipient_id": USER,
                      "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}}]
    }}]}]})
    .to_string()
}

async fn signed(client: &reqwest::Client, base: &str, body: String) -> bool {
    let sig = tarifa_service::api::signature::sign(SECRET.as_bytes(), body.as_bytes());
    matches!(
        client.post(format!("{base}/webhooks/meta")).header("x-hub-signature-256", sig).body(body).send().await,
        Ok(r) if r.status() == 200
    )
}

async fn databases() -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tarifa-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = vec![format!("sqlite://{}", dir.join("crash.db").display())];
    match std::env::var("TARIFA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let name = format!("tarifa_crash_{}", std::process::id());
            drop_database(&name).await.unwrap();
            on_test_server(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            out.push(format!("{}/{name}", &url[..url.rfind('/').unwrap()]));
        }
        _ => eprintln!("PostgreSQL crash test skipped: TARIFA_TEST_DATABASE_URL is not set"),
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_event_and_charges_nothing_twice() {
    for db in databases().await {
        let dir = std::env::temp_dir().join(format!("tarifa-crash-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = write_configs(&dir);
        let mut server = start(&config, &db).await;
        let client =
            tarifa_service::runtime::https::client(std::time::Duration::from_secs(120), None)
                .unwrap();
        let top = client
            .post(format!("{}/v1/wallets/shop/topups", server.base))
            .bearer_auth(TOKEN)
            .json(&json!({"id": "pay", "amount": "100000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(top.status(), 201);

        // Load: 8 senders, each recording a send and then its delivery; keys acknowledged.
        // Acknowledged events: (key, message id).
        let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        let now = tarifa_service::clock::now();
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (client, base, acked, sent) = (
                client.clone(),
                server.base.clone(),
                acked.clone(),
                sent.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("wamid.crash.{worker}.{i}");
                    let event = json!([{"type": "outbound", "id": id, "at": now, "business": "shop", "phone": "pn-1",
                                        "user": USER, "template": {"name": "promo", "category": "marketing"}}]);
                    match client.post(format!("{base}/v1/events")).bearer_auth(TOKEN).json(&event).send().await {
                        Ok(r) if r.status() == 200 => {
                            acked.lock().unwrap().push((format!("out:{id}"), id.clone()));
                            sent.lock().unwrap().push(id.clone());
                        }
                        _ => return,
                    }
                    if signed(&client, &base, delivered(&id, now + 1)).await {
                        acked
                            .lock()
                            .unwrap()
                            .push((format!("st:{id}:delivered:{USER}"), id.clone()));
                    } else {
                        return;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.child.start_kill().unwrap(); // SIGKILL
        server.child.wait().await.unwrap();
        for t in tasks {
            let _ = t.await;
        }
        let acked = acked.lock().unwrap().clone();
        let sent = sent.lock().unwrap().clone();
        assert!(
            acked.len() > 50,
            "too little load before the kill: {}",
            acked.len()
        );
        eprintln!("{db}: {} events acknowledged before SIGKILL", acked.len());

        // Restart on the same database.
        let server = start(&config, &db).await;
        let store = Store::open(&db).await.unwrap();
        let refs: Vec<(&str, &str)> = acked
            .iter()
            .map(|(key, id)| (key.as_str(), id.as_str()))
            .collect();
        let found = store.existing_keys(&refs).await.unwrap();
        let lost: Vec<&str> = refs
            .iter()
            .map(|(key, _)| *key)
            .filter(|k| !found.contains(*k))
            .collect();
        assert!(lost.is_empty(), "{db}: acknowledged events lost: {lost:?}");

        // Deliver every sent message again (retries and the deliveries cut by the kill).
        for id in &sent {
            assert!(signed(&client, &server.base, delivered(id, now + 1)).await);
        }
        // No event stored twice, no message charged twice (no unique index refuses a second
        // copy, on either backend: the writer's own check is what holds this).
        for (what, sql) in [
            (
                "event key",
                "SELECT key FROM events GROUP BY key HAVING COUNT(*) > 1",
            ),
            (
                "charged message",
                "SELECT message FROM charges GROUP BY message HAVING COUNT(*) > 1",
            ),
        ] {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&db).await.unwrap();
            let twice = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            assert!(
                twice.is_empty(),
                "{db}: {} {what}s stored twice",
                twice.len()
            );
        }
        let mut ledger = Ledger::new();
        for entry in store.ledger_ops().await.unwrap() {
            entry.op.apply_to(&mut ledger).unwrap();
        }
        let totals = ledger.totals("EUR");
        assert_eq!(
            totals.debits_posted, totals.credits_posted,
            "posted debits = credits"
        );
        assert_eq!(
            totals.debits_pending, totals.credits_pending,
            "pending debits = credits"
        );
        let wallet = ledger.balance("wallet:shop").unwrap();
        assert!(wallet.available.0 >= 0, "wallet below its floor");
        // Every sent message was held once and captured once, at 0.0702 (Spain marketing × 1.2).
        for id in &sent {
            match ledger.resolution(&format!("hold:{id}")) {
                Some(Resolution::Posted { amount, .. }) => {
                    assert_eq!(amount.micros(), 70_200, "{id}")
                }
                other => panic!("{db}: hold of {id} is {other:?}"),
            }
            assert!(
                ledger.transfer(&format!("charge:{id}")).is_none(),
                "{id} charged beside its capture"
            );
        }
        let charged = ledger
            .history("wallet:shop")
            .unwrap()
            .filter(|t| t.id.0.starts_with("capture:"))
            .count();
        assert_eq!(charged, sent.len(), "one capture per message");
        assert_eq!(
            wallet.posted.micros(),
            100_000_000_000 - 70_200 * sent.len() as i128
        );
        store.close().await;
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(name) = db
            .strip_prefix("postgres")
            .and_then(|_| db.rsplit('/').next())
        {
            let _ = drop_database(name).await;
        }
    }
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("tarifa-crash-{}", std::process::id())),
    );
}

/// Runs `sql` on the database of `TARIFA_TEST_DATABASE_URL` (which must be set).
async fn on_test_server(sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let url = std::env::var("TARIFA_TEST_DATABASE_URL").unwrap_or_default();
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Drops the crash test's PostgreSQL database `name`, if it exists.
async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    on_test_server(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_sends_signed_webhooks_and_quotes_that_the_server_accepts() {
    let dir = std::env::temp_dir().join(format!("tarifa-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_configs(&dir);
    let db = format!("sqlite://{}", dir.join("load.db").display());
    let server = start(&config, &db).await;
    let load = |kind: &'static str| {
        let base = server.base.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tarifa"))
                .args([
                    "load",
                    "--url",
                    &base,
                    "--kind",
                    kind,
                    "--rate",
                    "300",
                    "--duration",
                    "1",
                ])
                .args(["--connections", "8", "--secret", SECRET, "--token", TOKEN])
                .args(["--business", "shop", "--events-per-webhook", "2", "--json"])
                .arg("--timeline")
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        }
    };
    let webhooks = load("webhook").await;
    assert_eq!(webhooks["planned"], 300, "{webhooks}");
    assert_eq!(webhooks["ok"], 300, "{webhooks}");
    assert_eq!(webhooks["errors"], 0, "{webhooks}");
    assert_eq!(webhooks["events_per_request"], 2, "{webhooks}");
    let quotes = load("quote").await;
    assert_eq!(quotes["ok"], 300, "{quotes}");
    // 300 requests at 300/s: every one is due in the first second of the schedule.
    for run in [&webhooks, &quotes] {
        let timeline = run["timeline"].as_array().expect("a timeline");
        assert_eq!(timeline.len(), 1, "{run}");
        assert_eq!(timeline[0]["second"], 0, "{run}");
        assert_eq!(timeline[0]["requests"], 300, "{run}");
        let (p50, max) = (
            timeline[0]["p50_ms"].as_f64(),
            timeline[0]["max_ms"].as_f64(),
        );
        assert!(p50.unwrap() <= max.unwrap(), "{run}");
    }
    let store = Store::open(&db).await.unwrap();
    assert_eq!(
        store.counts().await.unwrap().0,
        600,
        "every status of every webhook is stored once"
    );
    store.close().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
