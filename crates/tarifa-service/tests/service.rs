//! `tarifa serve` over HTTP, on SQLite and (when `TARIFA_TEST_DATABASE_URL` is set) PostgreSQL:
//! Meta's handshake and signatures, durable idempotent ingestion, the events API, the wallet
//! (hold on send, capture on delivery, release on failure, 402), quotes, invoices,
//! reconciliation, alerts and operations endpoints.

mod common;

use common::*;
use serde_json::{json, Value};

const USER: &str = "34600000001";

fn outbound(id: &str, at: i64, template: Option<(&str, &str)>) -> Value {
    let mut v = json!({"type": "outbound", "id": id, "at": at, "business": "shop", "phone": "pn-1", "user": USER});
    if let Some((name, category)) = template {
        v["template"] = json!({"name": name, "category": category});
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_handshake_and_signatures() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let url = format!("{}/webhooks/meta", app.base);
        let ok = app
            .client
            .get(&url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", VERIFY),
                ("hub.challenge", "1158201444"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        let wrong = app
            .client
            .get(&url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", "nope"),
                ("hub.challenge", "1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);

        // Spec §9.2 (a), verbatim: a bad or missing signature stores nothing.
        let body = std::fs::read_to_string(
            repo().join("crates/tarifa-core/tests/fixtures/webhooks/a_pmp_marketing_sent.json"),
        )
        .or_else(|_| std::fs::read_to_string(first_fixture()))
        .unwrap();
        for sig in [None, Some("sha256=00"), Some("sha1=abc")] {
            let mut req = app.client.post(&url).body(body.clone());
            if let Some(s) = sig {
                req = req.header("x-hub-signature-256", s);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                401,
                "{backend:?} {sig:?}"
            );
        }
        assert_eq!(app.store().counts().await.unwrap().0, 0, "nothing stored");
        let r = app.webhook(&body).await;
        assert_eq!(r.status(), 200);
        let stored = app.store().counts().await.unwrap().0;
        assert!(stored >= 1);
        // Meta retries: harmless.
        assert_eq!(app.webhook(&body).await.status(), 200);
        assert_eq!(app.store().counts().await.unwrap().0, stored);
        app.stop().await;
    }
}

/// Some verbatim webhook fixture of spec §9 (the helper that names them may change).
fn first_fixture() -> std::path::PathBuf {
    let dir = repo().join("crates/tarifa-core/tests/fixtures/webhooks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("\"statuses\""))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_of_spec_9_is_acknowledged_and_stored() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let dir = repo().join("crates/tarifa-core/tests/fixtures/webhooks");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let body = std::fs::read_to_string(&path).unwrap();
            if !body.trim_start().starts_with('{') || !body.contains("whatsapp_business_account") {
                continue;
            }
            let r = app.webhook(&body).await;
            assert_eq!(r.status(), 200, "{}", path.display());
            n += 1;
        }
        assert!(n >= 4, "fixtures found: {n}");
        let (events, dead, _, _) = app.store().counts().await.unwrap();
        assert!(
            events >= n as i64 - dead,
            "events {events}, dead letters {dead}"
        );
        app.stop().await;
    }
}

/// The value of metric `name` in a `/metrics` text, if it is there.
fn sample(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_api_is_idempotent_and_keeps_valid_neighbours() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = now() - 3600;
        let batch = json!([
            {"type": "inbound", "id": "in-1", "at": t, "business": "post", "phone": "pn-1", "user": USER},
            {"type": "inbound", "id": "in-2", "at": "not a time", "business": "post", "phone": "pn-1", "user": USER},
            {"type": "inbound", "id": "in-3", "at": t, "business": "nobody", "phone": "pn-1", "user": USER},
            {"type": "outbound", "id": "out-1", "at": t + 60, "business": "post", "phone": "pn-1", "user": USER},
        ]);
        let (status, body) = app.post("/v1/events", &batch).await;
        assert_eq!(status, 207, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results[0]["status"], "stored");
        assert_eq!(results[1]["status"], "rejected");
        assert!(
            results[1]["message"]
                .as_str()
                .unwrap()
                .contains("field `at`"),
            "{body}"
        );
        assert_eq!(results[2]["status"], "rejected");
        assert!(results[2]["message"]
            .as_str()
            .unwrap()
            .contains("\"nobody\""));
        assert_eq!(results[3]["status"], "stored");
        // The same batch again: the stored ones are duplicates.
        let (_, again) = app.post("/v1/events", &batch).await;
        assert_eq!(again["results"][0]["status"], "duplicate");
        assert_eq!(again["results"][3]["status"], "duplicate");
        assert_eq!(app.store().counts().await.unwrap().0, 2);
        // Keys the filter of stored keys has seen were looked up in the store.
        let (_, metrics) = app.get_text("/metrics").await;
        assert!(sample(&metrics, "tarifa_key_lookups_total").unwrap() >= 1);
        assert!(
            sample(&metrics, "tarifa_key_lookup_keys_total").unwrap() >= 2,
            "{metrics}"
        );
        // Auth and body checks.
        let no_token = app
            .client
            .post(format!("{}/v1/events", app.base))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(no_token.status(), 401);
        let (status, err) = app.post("/v1/events", &json!({"nope": 1})).await;
        assert_eq!(status, 400);
        assert_eq!(err["error"]["code"], "invalid_body");
        let big = "x".repeat(300 * 1024);
        let too_big = app
            .client
            .post(format!("{}/v1/events", app.base))
            .bearer_auth(TOKEN)
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(too_big.status(), 413);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_holds_on_send_captures_on_delivery_and_releases_on_failure() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = now() - 600;
        // No money: the marketing template is refused with 402 and not stored.
        let (status, body) = app
            .post(
                "/v1/events",
                &json!([outbound("m-0", t, Some(("promo", "marketing")))]),
            )
            .await;
        assert_eq!(status, 402, "{body}");
        assert_eq!(body["results"][0]["code"], "insufficient_funds");
        assert_eq!(app.store().counts().await.unwrap().0, 0);

        let (status, top) = app.top_up("shop", "pay-1", "10").await;
        assert_eq!(status, 201, "{top}");
        let (status, _) = app.top_up("shop", "pay-1", "10").await;
        assert_eq!(status, 200, "a retried top-up is not counted twice");
        assert_eq!(app.wallet("shop").await["available"], "10");

        // Spain marketing is 0.0585 EUR at Meta; the resale list charges × 1.2 = 0.0702.
        let (status, body) = app
            .post(
                "/v1/events",
                &json!([
                    outbound("m-1", t, Some(("promo", "marketing"))),
                    outbound("m-2", t, Some(("promo", "marketing")))
                ]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let w = app.wallet("shop").await;
        assert_eq!(w["available"], "9.8596", "{w}");
        assert_eq!(w["holds"].as_array().unwrap().len(), 2);

        // Delivered: captured at the rated amount. Failed: released.
        let delivered = status_webhook(
            "shop",
            "m-1",
            "delivered",
            t + 5,
            USER,
            json!({"pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}}),
        );
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        let failed = status_webhook(
            "shop",
            "m-2",
            "failed",
            t + 5,
            USER,
            json!({"errors": [{"code": 131050, "title": "stopped marketing"}]}),
        );
        assert_eq!(app.webhook(&failed).await.status(), 200);
        let w = app.wallet("shop").await;
        assert_eq!(w["posted"], "9.9298", "{w}");
        assert_eq!(w["available"], "9.9298");
        assert!(w["holds"].as_array().unwrap().is_empty());
        // A duplicate delivery does not charge twice.
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        assert_eq!(app.wallet("shop").await["posted"], "9.9298");

        let (_, history) = app.get("/v1/wallets/shop/transactions").await;
        let ids: Vec<&str> = history["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["transfer"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "topup:pay-1",
                "hold:m-1",
                "hold:m-2",
                "capture:m-1",
                "release:m-2"
            ]
        );

        // After a restart everything is still there, and the failed user's opt-out is kept.
        let mut app = app;
        app.restart().await;
        assert_eq!(app.wallet("shop").await["posted"], "9.9298");
        // Retries of events stored before the restart are still duplicates, both while the
        // filter of stored keys is being filled in the background (every key is looked up in
        // the database) and once it is complete (only keys it may contain are looked up).
        for phase in ["just after the restart", "with the filter complete"] {
            if phase == "with the filter complete" {
                let mut complete = false;
                for _ in 0..200 {
                    let (_, metrics) = app.get_text("/metrics").await;
                    // The sample line, not the HELP line (which also starts with "… 1").
                    if metrics.contains("\ntarifa_seen_keys_complete 1\n") {
                        let (_, metrics) = app.get_text("/metrics").await;
                        assert!(metrics.contains("\ntarifa_seen_keys 4\n"), "{metrics}");
                        complete = true;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                assert!(complete, "the filter of stored keys was never completed");
            }
            assert_eq!(app.webhook(&delivered).await.status(), 200, "{phase}");
            let (status, body) = app
                .post(
                    "/v1/events",
                    &json!([outbound("m-1", t, Some(("promo", "marketing")))]),
                )
                .await;
            assert_eq!(status, 200, "{phase}: {body}");
            assert_eq!(body["results"][0]["status"], "duplicate", "{phase}: {body}");
            assert_eq!(app.wallet("shop").await["posted"], "9.9298", "{phase}");
            assert_eq!(
                app.store().counts().await.unwrap().0,
                4,
                "{phase}: no event stored twice"
            );
        }
        let (_, q) = app.post("/v1/quote", &json!({"business": "shop", "phone": "pn-1", "user": USER, "template": {"name": "promo", "category": "marketing"}})).await;
        assert_eq!(q["allowed"], false, "{q}");
        assert!(
            q["blocked_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["code"] == "marketing_opt_out"),
            "{q}"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_say_whether_and_at_what_price() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = now();
        let quote = |user: &str, template: Option<(&str, &str)>| {
            let mut v = json!({"business": "shop", "phone": "pn-1", "user": user, "at": t});
            if let Some((n, c)) = template {
                v["template"] = json!({"name": n, "category": c});
            }
            v
        };
        // Free-form with no window: not allowed.
        let (status, q) = app.post("/v1/quote", &quote(USER, None)).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(q["allowed"], false);
        assert_eq!(q["blocked_by"][0]["code"], "customer_service_window_closed");
        // Problem 5 of real traffic: Meta would not deliver it, so it is quoted as never
        // charged, not as `free_tier`.
        assert_eq!(
            (&q["pricing_type"], &q["amount"], &q["rule"]),
            (&json!("not_delivered"), &json!("0"), &json!("1-2")),
            "{q}"
        );
        // Marketing template: its price, and 402-style block with an empty wallet.
        let (_, q) = app
            .post("/v1/quote", &quote(USER, Some(("promo", "marketing"))))
            .await;
        assert_eq!(q["amount"], "0.0702", "{q}");
        assert_eq!(q["pricing_type"], "regular");
        assert_eq!(q["currency"], "EUR");
        assert!(q["blocked_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["code"] == "insufficient_funds"));
        app.top_up("shop", "p", "3").await;
        let (_, q) = app
            .post("/v1/quote", &quote(USER, Some(("promo", "marketing"))))
            .await;
        assert_eq!(q["allowed"], true, "{q}");
        // Marketing to a US number: Meta does not deliver it.
        let (_, q) = app
            .post(
                "/v1/quote",
                &quote("12025550123", Some(("promo", "marketing"))),
            )
            .await;
        assert!(
            q["blocked_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["code"] == "us_marketing_not_delivered"),
            "{q}"
        );
        // The user writes: the window opens; a free-form reply is free customer service (D-19
        // allowance from 2026-10-01) — but seed 002's minimum balance of 5 EUR applies.
        assert_eq!(
            app.webhook(&inbound_webhook("shop", "in-9", USER, t - 60))
                .await
                .status(),
            200
        );
        let (_, q) = app.post("/v1/quote", &quote(USER, None)).await;
        assert_eq!(q["customer_service_window_open"], true, "{q}");
        assert_eq!(q["amount"], "0", "{q}");
        assert!(
            q["blocked_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["code"] == "min_balance_for_free_service"),
            "{q}"
        );
        app.top_up("shop", "p2", "5").await;
        let (_, q) = app.post("/v1/quote", &quote(USER, None)).await;
        assert_eq!(q["allowed"], true, "{q}");
        // Bad input is named.
        let (status, e) = app.post("/v1/quote", &json!({"business": "shop", "phone": "p", "user": USER, "template": {"category": "gossip"}})).await;
        assert_eq!(status, 400);
        assert!(e["error"]["message"].as_str().unwrap().contains("gossip"));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_and_reconciliation_for_a_month() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        // November 2026 in Madrid: two marketing and one utility template delivered to Spain.
        let month_start = 1_793_487_600; // 2026-11-01T00:00:00+01:00 (Madrid)
        let at = month_start + 86_400 * 3;
        app.top_up("shop", "p", "100").await;
        let batch = json!([
            outbound("a", at, Some(("promo", "marketing"))),
            outbound("b", at + 10, Some(("promo", "marketing"))),
            outbound("c", at + 20, Some(("receipt", "utility"))),
        ]);
        let (status, body) = app.post("/v1/events", &batch).await;
        assert_eq!(status, 200, "{body}");
        for (id, category, billable) in [
            ("a", "marketing", true),
            ("b", "utility", true),
            ("c", "utility", true),
        ] {
            let body = status_webhook(
                "shop",
                id,
                "delivered",
                at + 30,
                USER,
                json!({"pricing": {"billable": billable, "pricing_model": "PMP", "type": "regular", "category": category}}),
            );
            assert_eq!(app.webhook(&body).await.status(), 200);
        }
        let (status, inv) = app.get("/v1/invoices/shop/2026-11").await;
        assert_eq!(status, 200, "{inv}");
        assert_eq!(inv["currency"], "EUR");
        assert_eq!(inv["timezone"], "Europe/Madrid");
        // Meta bills b as utility and the default policy follows it (E-1): resale 0.0702 +
        // 2 × 0.01992 = 0.11004; Meta: 0.0585 + 2 × 0.0166 = 0.0917.
        assert_eq!(inv["subtotal"], "0.11004", "{inv}");
        assert_eq!(inv["total"], "0.11");
        assert_eq!(inv["meta_cost"], "0.0917");
        assert_eq!(inv["margin"], "0.01834");
        let lines = inv["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["market"], "Spain");
        assert_eq!(lines[0]["category"], "marketing");
        assert_eq!(lines[0]["quantity"], 1);
        assert_eq!(lines[1]["category"], "utility");
        assert_eq!(lines[1]["quantity"], 2);
        let (status, csv) = app.get_text("/v1/invoices/shop/2026-11?format=csv").await;
        assert_eq!(status, 200);
        assert!(
            csv.starts_with("business,month,currency,market,category"),
            "{csv}"
        );
        assert!(
            csv.contains("shop,2026-11,EUR,TOTAL,,,,,,,0.11,0.0917,0.01834"),
            "{csv}"
        );
        // The wallet captured what the invoice says.
        assert_eq!(app.wallet("shop").await["posted"], "99.88996");
        // Reconciliation compares the rules alone with Meta: Meta called message b utility;
        // tarifa's rules (the send record) say marketing.
        let (status, rec) = app.get("/v1/reconciliation/shop/2026-11").await;
        assert_eq!(status, 200, "{rec}");
        assert_eq!(rec["messages_compared"], 3);
        assert_eq!(rec["mismatches_by_kind"]["category"], 1, "{rec}");
        assert_eq!(rec["mismatches"][0]["message"], "b");
        // Errors are named.
        // Problem 5: months outside 2000-2099 are a 400, never a panic.
        for month in ["2026-13", "9999-12", "0000-01", "2100-01", "1999-12"] {
            let (status, e) = app.get(&format!("/v1/invoices/shop/{month}")).await;
            assert_eq!(status, 400, "{month}: {e}");
            assert_eq!(e["error"]["code"], "invalid_month");
        }
        let (status, _) = app.get("/v1/invoices/shop/2099-12").await;
        assert_eq!(status, 200);
        let (status, _) = app.get("/v1/invoices/nobody/2026-11").await;
        assert_eq!(status, 404);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.webhook(&inbound_webhook("shop", "x", USER, now()))
        .await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tarifa_webhooks_accepted_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tarifa_webhook_ack_seconds_count 1"));
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/webhooks/meta",
        "/v1/events",
        "/v1/quote",
        "/v1/wallets/{business}",
        "/v1/wallets/{business}/topups",
        "/v1/wallets/{business}/transactions",
        "/v1/invoices/{business}/{month}",
        "/v1/reconciliation/{business}/{month}",
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/stores/{business}/recovery",
        "/v1/stores/{business}/coupons/{coupon}",
        "/v1/stores/{business}/recoveries",
        "/v1/stores/{business}/recovery/report",
        "/v1/carts",
        "/v1/orders",
        "/v1/coupons/{code}/redeem",
        "/v1/recovery/run",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    app.stop().await;
}

/// A receiver of alerts over HTTPS (with a CA made by the test) that fails the first attempt and
/// accepts the second; what it received.
async fn alert_receiver() -> (TestHttps, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = received.clone();
    let router = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                let mut s = seen.lock().unwrap();
                s.push(body);
                if s.len() == 1 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    (TestHttps::serve(router).await, received)
}

/// Crossing below the threshold sends one alert to an `https` URL, retried after a failure; the
/// receiver's certificate is verified against the operator's CA bundle (`[tls] ca_file`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_balance_alert_is_delivered_over_https_with_retries() {
    let (https, received) = alert_receiver().await;
    let url = format!("{}/alerts", https.base);
    let app = TestApp::spawn_configured(Backend::Sqlite, Some(url), |c| {
        c.ca_file = Some(https.ca_file.clone())
    })
    .await;
    app.top_up("shop", "p", "5.05").await;
    let t = now();
    let (status, _) = app
        .post(
            "/v1/events",
            &json!([outbound("m", t, Some(("promo", "marketing")))]),
        )
        .await;
    assert_eq!(status, 200);
    // Crossing below 5 EUR: one alert, retried after the failure (2 s backoff).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let alerts = app.store().alerts_of("shop").await.unwrap();
        if alerts.len() == 1 && alerts[0].0 == "delivered" {
            assert_eq!(alerts[0].1, 2, "two attempts");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alert not delivered: {alerts:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let alert: Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(alert["type"], "wallet.low_balance");
    assert_eq!(alert["available"], "4.9798");
    app.stop().await;
}

/// `account_update` webhooks (V-7 volume tier, AI-5 auth-international eligibility) are stored,
/// but the rating engine does not price from them (tiers come from the tier card and the
/// monthly counts, V-1 … V-6; eligibility from the config, AI-1 … AI-3): a batch re-rating
/// ignores them, so live pricing does too, and the wallet's charge still equals the invoice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_updates_are_stored_and_leave_live_prices_as_the_batch_does() {
    let account_update = |at: i64, value: Value| {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "shop", "time": at, "changes": [{"field": "account_update", "value": value}]}]
        })
        .to_string()
    };
    const INDIA: &str = "919876543210";
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let month_start = 1_793_487_600; // 2026-11-01T00:00:00+01:00 (Madrid)
        let at = month_start + 86_400 * 5;
        app.top_up("shop", "p", "100").await;
        let quote = |user: &str, category: &str| {
            json!({"business": "shop", "phone": "pn-1", "user": user, "at": at,
                   "template": {"name": "t", "category": category}})
        };
        let (_, utility_before) = app.post("/v1/quote", &quote(USER, "utility")).await;
        let (_, auth_before) = app.post("/v1/quote", &quote(INDIA, "authentication")).await;
        let (events_before, ..) = app.store().counts().await.unwrap();
        for body in [
            account_update(
                at - 3_600,
                json!({"event": "VOLUME_BASED_PRICING_TIER_UPDATE", "volume_tier_info": {
                    "tier_update_time": at - 3_600, "pricing_category": "UTILITY",
                    "tier": "25000001:50000000", "effective_month": "2026-11", "region": "Spain"}}),
            ),
            account_update(
                at - 3_500,
                json!({"event": "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE", "auth_international_rate_eligibility": {
                    "start_time": month_start, "exception_countries": [{"country_code": "IN", "start_time": month_start}]}}),
            ),
        ] {
            assert_eq!(app.webhook(&body).await.status(), 200);
        }
        let (events_after, ..) = app.store().counts().await.unwrap();
        assert_eq!(events_after, events_before + 2, "both updates are stored");
        let (_, utility_after) = app.post("/v1/quote", &quote(USER, "utility")).await;
        let (_, auth_after) = app.post("/v1/quote", &quote(INDIA, "authentication")).await;
        for (before, after) in [
            (&utility_before, &utility_after),
            (&auth_before, &auth_after),
        ] {
            assert_eq!(
                (&before["amount"], &before["category"], &before["band"]),
                (&after["amount"], &after["category"], &after["band"]),
                "{before} / {after}"
            );
        }
        assert_eq!(auth_after["category"], "authentication", "{auth_after}");

        // Delivered after the updates: charged like the batch, which reconciliation confirms.
        let mut message = outbound("au-1", at, Some(("t", "authentication")));
        message["user"] = json!(INDIA);
        let (status, body) = app
            .post(
                "/v1/events",
                &json!([message, outbound("au-2", at + 5, Some(("t", "utility")))]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for (id, user) in [("au-1", INDIA), ("au-2", USER)] {
            let body = status_webhook("shop", id, "delivered", at + 30, user, json!({}));
            assert_eq!(app.webhook(&body).await.status(), 200);
        }
        let (status, rec) = app.get("/v1/reconciliation/shop/2026-11").await;
        assert_eq!(status, 200, "{rec}");
        assert!(
            rec["mismatches_by_kind"].get("wallet_charge").is_none(),
            "{rec}"
        );
        let (_, inv) = app.get("/v1/invoices/shop/2026-11").await;
        let amount = |q: &Value| {
            rust_decimal::Decimal::from_str_exact(q["amount"].as_str().unwrap()).unwrap()
        };
        let expected = (amount(&auth_after) + amount(&utility_after))
            .normalize()
            .to_string();
        assert_eq!(inv["subtotal"], expected.as_str(), "{inv}");
        app.stop().await;
    }
}

/// SQLite's write-ahead log is checkpointed in the background (not inside the commits), and
/// `/metrics` shows it; PostgreSQL has no such metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_ahead_log_is_checkpointed_in_the_background() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = 1_795_000_000;
        let (status, body) = app
            .post(
                "/v1/events",
                &json!([{"type": "inbound", "id": "bg-1", "at": t, "business": "shop",
                         "phone": "pn-1", "user": USER}]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut seen = false;
        for _ in 0..100 {
            let (_, metrics) = app.get_text("/metrics").await;
            let runs = sample(&metrics, "tarifa_sqlite_checkpoints_total");
            let frames = sample(&metrics, "tarifa_sqlite_wal_frames");
            if matches!(backend, Backend::Postgres) {
                assert_eq!((runs, frames), (None, None), "{metrics}");
                seen = true;
                break;
            }
            if runs.unwrap() >= 1 && frames.unwrap() > 0 {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            seen,
            "{backend:?}: no background checkpoint of the stored event"
        );
        app.stop().await;
    }
}

/// The owner (business) of a message is found from its stored events, on both backends: its
/// outbound record or any of its statuses, never an event that does not know its business, and
/// never another message whose id starts with this one's (`a:b` after `a`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_of_messages_come_from_their_outbound_records_and_statuses() {
    use std::sync::Arc;
    use tarifa_service::domain::effects::EventKind;
    use tarifa_service::domain::ids::EventKey;
    use tarifa_service::storage::{Effects, NewEvent};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let store = app.store().clone();
        let row = |key: &str, message: &str, business: &str| NewEvent {
            key: EventKey::stored(key.into()),
            business: business.into(),
            kind: EventKind::Status,
            message: message.into(),
            at: 1,
            received_at: 1,
            line: "{}".into(),
            event: Arc::new(tarifa_core::input::Event::Ignored),
        };
        let w = Effects {
            events: vec![
                row("out:a", "a", "shop"),
                row("st:a:b:sent:1", "a:b", "other"),
                row("st:c:delivered:2", "c", "shop2"),
                row("st:d:sent:3", "d", ""),
                row("st:e:sent:4", "e", ""),
                row("st:e:read:4", "e", "shop3"),
                row("in:f", "", "shop"),
            ],
            ..Effects::default()
        };
        store.commit(&w).await.unwrap();
        let mut owners = store
            .businesses_of(&["a", "a:b", "c", "d", "e", "f", "zz", ""])
            .await
            .unwrap();
        owners.sort();
        let expected = [
            ("a", "shop"),
            ("a:b", "other"),
            ("c", "shop2"),
            ("e", "shop3"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(m, b)| (m.to_string(), b.to_string()))
            .collect();
        assert_eq!(owners, expected, "{backend:?}");
        app.stop().await;
    }
}

/// A group commit stores every value exactly (text with quotes, backslashes, control characters
/// and non-ASCII; large and negative integers) and keeps the ledger operations in the order
/// applied, on both backends (PostgreSQL writes a group as one statement of JSON arrays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_stores_values_exactly_and_in_order() {
    use std::sync::Arc;
    use tarifa_core::category::PricingType;
    use tarifa_core::ledger::{AccountId, Amount, Request, TransferId};
    use tarifa_service::domain::effects::{EventKind, LedgerEntry, LedgerOp};
    use tarifa_service::domain::ids::EventKey;
    use tarifa_service::storage::{Charge, Effects, NewEvent};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let store = app.store().clone();
        let tricky = "q\"uote \\ back\\slash\n\ttab é 中文 🚀 \u{1} end";
        let row = |n: i64| NewEvent {
            key: EventKey::stored(format!("st:m-{n}-{tricky}:sent:346000{n}")),
            business: "shop".into(),
            kind: EventKind::Status,
            message: format!("m-{n}-{tricky}"),
            at: i64::MAX - 1 - n,
            received_at: -n,
            line: format!(
                "{{\"k\":\"{}\"}}",
                tricky.replace('\\', "\\\\").replace('"', "\\\"")
            ),
            event: Arc::new(tarifa_core::input::Event::Ignored),
        };
        let before = store.ledger_ops().await.unwrap().len();
        let w = Effects {
            events: (0..3).map(row).collect(),
            ledger_ops: (0..40)
                .map(|i| LedgerEntry {
                    at: i,
                    op: LedgerOp::Apply(Request::Post {
                        id: TransferId(format!("op {i} {tricky}")),
                        debit_account: AccountId(format!("funding:{tricky}")),
                        credit_account: AccountId("wallet:shop".into()),
                        amount: Amount(i128::from(i) * 1_000_000_000_000),
                    }),
                })
                .collect(),
            charges: vec![Charge {
                message: format!("m-0-{tricky}"),
                business: "shop".into(),
                at: 7,
                pricing_type: PricingType::Regular,
                category: "marketing".into(),
                rule: "D-3".into(),
                amount: "0.0702".parse().unwrap(),
                currency: "EUR".into(),
                captured: Amount(70_200),
                uncollected: Amount::ZERO,
                counters: Vec::new(),
            }],
            ..Effects::default()
        };
        store.commit(&w).await.unwrap();
        let keys: Vec<(&str, &str)> = w.events.iter().map(NewEvent::lookup).collect();
        let found = store.existing_keys(&keys).await.unwrap();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.contains(w.events[2].key.as_str()));
        let mut owners = store.businesses_of(&[&w.events[1].message]).await.unwrap();
        owners.sort();
        assert_eq!(owners, [(w.events[1].message.clone(), "shop".to_string())]);
        let ops = store.ledger_ops().await.unwrap();
        assert_eq!(&ops[before..], &w.ledger_ops[..]);
        let lines = store
            .business_events("shop", i64::MIN, i64::MAX)
            .await
            .unwrap();
        let mine: Vec<&String> = lines.iter().filter(|l| l.contains("\\\"uote")).collect();
        assert_eq!(mine.len(), 3, "{lines:?}");
        assert_eq!(mine[0], &w.events[0].line);
        let charges = store.business_charges("shop", 0, 10).await.unwrap();
        assert_eq!(charges, w.charges);
        // The charge is found by its message (a recovery's cost), through SQLite's look-up
        // index of charges.
        let charged = tarifa_service::storage::recovery::RecoveryStore {
            store: store.clone(),
        }
        .charged(&[&w.charges[0].message, "m-1", "m-0"])
        .await
        .unwrap();
        assert_eq!(charged, [(w.charges[0].message.clone(), "0.0702".into())]);
        app.stop().await;
    }
}

/// A connection of the test's own to the service's live database, for fault injection: a
/// trigger that makes the insert of any event whose key contains `poison` fail (so the group
/// commit holding it fails as a whole), and the write lock of `events`, which keeps a group
/// commit waiting until the test lets it go.
struct Saboteur {
    conn: sqlx::AnyConnection,
    backend: Backend,
}

impl Saboteur {
    async fn connect(app: &TestApp, backend: Backend) -> Saboteur {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let conn = sqlx::AnyConnection::connect(&app.config.database_url)
            .await
            .expect("a connection of the test's own");
        Saboteur { conn, backend }
    }

    async fn run(&mut self, sql: &'static str) {
        sqlx::raw_sql(sql)
            .execute(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// From now on, a group commit with a `poison` key fails.
    async fn poison(&mut self) {
        self.run(match self.backend {
            Backend::Sqlite => {
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.key LIKE '%poison%' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            }
            Backend::Postgres => {
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   IF NEW.key LIKE '%poison%' THEN \
                     RAISE EXCEPTION 'injected failure for %', NEW.key; \
                   END IF; \
                   RETURN NEW; \
                 END $$; \
                 CREATE TRIGGER poison BEFORE INSERT ON events \
                   FOR EACH ROW EXECUTE FUNCTION poison()"
            }
        })
        .await;
    }

    async fn cure(&mut self) {
        self.run(match self.backend {
            Backend::Sqlite => "DROP TRIGGER poison",
            Backend::Postgres => "DROP TRIGGER poison ON events; DROP FUNCTION poison()",
        })
        .await;
    }

    /// Takes the write lock of `events` (readers go on): a group commit waits for
    /// [`Saboteur::unlock`] (on SQLite, for at most the pool's busy timeout of 5 s).
    async fn lock(&mut self) {
        self.run(match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN; LOCK TABLE events IN EXCLUSIVE MODE",
        })
        .await;
    }

    async fn unlock(&mut self) {
        self.run("ROLLBACK").await;
    }
}

/// The ledger as the database has it: its stored operations replayed.
async fn stored_ledger(
    app: &TestApp,
) -> (
    tarifa_core::ledger::Ledger,
    Vec<tarifa_service::domain::effects::LedgerOp>,
) {
    let mut ledger = tarifa_core::ledger::Ledger::new();
    let mut ops = Vec::new();
    for entry in app.store().ledger_ops().await.unwrap() {
        entry.op.apply_to(&mut ledger).unwrap();
        ops.push(entry.op);
    }
    (ledger, ops)
}

/// The transfer ids of the holds the service reports on the wallet of `shop`.
async fn reported_holds(app: &TestApp) -> std::collections::BTreeSet<String> {
    app.wallet("shop").await["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["transfer"].as_str().unwrap().to_string())
        .collect()
}

/// The books after a fault: exactly the messages of `stored` are in the database, each held
/// exactly once at 0.0702 EUR, nothing of `refused`; the books balance; and the wallet the
/// service reports (from memory) is the one the stored ledger says, to the last hold.
async fn check_books(
    app: &TestApp,
    stored: &std::collections::BTreeSet<String>,
    refused: &std::collections::BTreeSet<String>,
    what: &str,
) {
    use tarifa_core::ledger::{Request, TransferKind};
    use tarifa_service::domain::{book::amount_text, effects::LedgerOp};
    let keys: Vec<(String, &str)> = stored
        .iter()
        .chain(refused)
        .map(|id| (format!("out:{id}"), id.as_str()))
        .collect();
    let refs: Vec<(&str, &str)> = keys.iter().map(|(k, id)| (k.as_str(), *id)).collect();
    let found = app.store().existing_keys(&refs).await.unwrap();
    for id in stored {
        assert!(
            found.contains(&format!("out:{id}")),
            "{what}: {id} was acknowledged but is not stored"
        );
    }
    for id in refused {
        assert!(
            !found.contains(&format!("out:{id}")),
            "{what}: {id} was refused but is stored"
        );
    }
    assert_eq!(
        app.store().counts().await.unwrap().0,
        stored.len() as i64,
        "{what}: the events in the database"
    );

    let (ledger, ops) = stored_ledger(app).await;
    let totals = ledger.totals("EUR");
    assert_eq!(
        totals.debits_posted, totals.credits_posted,
        "{what}: posted debits = credits"
    );
    assert_eq!(
        totals.debits_pending, totals.credits_pending,
        "{what}: pending debits = credits"
    );
    // One hold operation per stored message, none for a refused one (no double hold).
    let mut holds = std::collections::BTreeMap::<String, usize>::new();
    for op in &ops {
        if let LedgerOp::Apply(r @ Request::Hold { .. }) = op {
            *holds.entry(r.id().0.clone()).or_default() += 1;
        }
    }
    let expected: std::collections::BTreeMap<String, usize> =
        stored.iter().map(|id| (format!("hold:{id}"), 1)).collect();
    assert_eq!(holds, expected, "{what}: the stored hold operations");
    for id in stored {
        let t = ledger.transfer(&format!("hold:{id}")).unwrap();
        assert_eq!(t.amount.micros(), 70_200, "{what}: {id}");
        assert!(
            matches!(t.kind, TransferKind::Pending { .. }),
            "{what}: {id}"
        );
    }
    let wallet = ledger.balance("wallet:shop").unwrap();
    assert_eq!(
        wallet.posted.micros(),
        100_000_000,
        "{what}: only the top-up is posted"
    );
    assert_eq!(
        wallet.available.micros(),
        100_000_000 - 70_200 * stored.len() as i128,
        "{what}: available = top-up − the stored holds"
    );

    // What the service reports from memory is what the database has.
    let reported = app.wallet("shop").await;
    assert_eq!(
        reported["posted"],
        amount_text(wallet.posted),
        "{what}: {reported}"
    );
    assert_eq!(
        reported["pending"],
        amount_text(wallet.pending),
        "{what}: {reported}"
    );
    assert_eq!(
        reported["available"],
        amount_text(wallet.available),
        "{what}: {reported}"
    );
    let in_ledger: std::collections::BTreeSet<String> = ledger
        .pending_holds("wallet:shop")
        .unwrap()
        .iter()
        .map(|t| t.id.0.clone())
        .collect();
    assert_eq!(
        in_ledger,
        expected.keys().cloned().collect(),
        "{what}: the stored ledger's holds"
    );
    assert_eq!(
        reported_holds(app).await,
        in_ledger,
        "{what}: the reported holds"
    );
}

/// One marketing template to Spain per id, each in a request of its own, all at once; each
/// answer is (id, HTTP status, body).
fn send_each(
    app: &TestApp,
    ids: &[String],
    at: i64,
) -> Vec<tokio::task::JoinHandle<(String, u16, Value)>> {
    ids.iter()
        .map(|id| {
            let (client, url, id) = (
                app.client.clone(),
                format!("{}/v1/events", app.base),
                id.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(TOKEN)
                    .json(&json!([outbound(&id, at, Some(("promo", "marketing")))]))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (id, status, r.json().await.unwrap_or(Value::Null))
            })
        })
        .collect()
}

/// Splits answers into the ids stored (200, `stored`) and the ids refused (503,
/// `storage_unavailable`); any other answer fails the test.
async fn sort_answers(
    tasks: Vec<tokio::task::JoinHandle<(String, u16, Value)>>,
    what: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    let (mut ok, mut refused) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for t in tasks {
        let (id, status, body) = t.await.unwrap();
        match status {
            200 => {
                assert_eq!(
                    body["results"][0]["status"], "stored",
                    "{what}: {id}: {body}"
                );
                ok.insert(id);
            }
            503 => {
                assert_eq!(
                    body["error"]["code"], "storage_unavailable",
                    "{what}: {id}: {body}"
                );
                refused.insert(id);
            }
            _ => panic!("{what}: {id}: {status} {body}"),
        }
    }
    (ok, refused)
}

/// Waits until the service reports a hold for each of `ids` (applied to the book, maybe not
/// committed yet).
async fn wait_for_holds(app: &TestApp, ids: &[String], what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let holds = reported_holds(app).await;
        if ids.iter().all(|id| holds.contains(&format!("hold:{id}"))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: holds never applied: {holds:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Fault injection on the overlapping single writer: a group commit fails (a trigger on the
/// live database refuses events whose key contains `poison`) while the next group, applied on
/// top of it, is open. Both groups must be refused with 503, nothing of them may stay in
/// memory (the book is rebuilt from the database), and later commands must work: retried, the
/// refused events are stored and held exactly once, and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_refuses_the_open_group_too_and_keeps_nothing() {
    use std::collections::BTreeSet;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let mut saboteur = Saboteur::connect(&app, backend).await;
        let t = now() - 600;
        let mut stored = BTreeSet::new();

        // 1. A funded wallet with a few holds.
        let (status, body) = app.top_up("shop", "pay-1", "100").await;
        assert_eq!(status, 201, "{body}");
        let warm: Vec<String> = (0..5).map(|i| format!("warm-{i}")).collect();
        let (status, body) = app
            .post(
                "/v1/events",
                &Value::Array(
                    warm.iter()
                        .map(|id| outbound(id, t, Some(("promo", "marketing"))))
                        .collect(),
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        stored.extend(warm.iter().cloned());
        let w = app.wallet("shop").await;
        assert_eq!(w["available"], "99.649", "{w}");
        check_books(
            &app,
            &stored,
            &BTreeSet::new(),
            &format!("{backend:?} before"),
        )
        .await;

        saboteur.poison().await;

        // 2a. A burst: 50 good events and a poisoned one, each in a request of its own, all at
        // once, so groups overlap (likely, not certain). Whatever the grouping, the poisoned
        // event is refused, every answer is 200 or 503, and memory matches the database.
        let mut burst: Vec<String> = (0..50).map(|i| format!("burst-{i}")).collect();
        burst.insert(25, "burst-poison".into());
        let what = format!("{backend:?} burst");
        let (ok, mut refused) = sort_answers(send_each(&app, &burst, t), &what).await;
        assert!(
            refused.contains("burst-poison"),
            "{what}: the poisoned event was acknowledged"
        );
        eprintln!("{what}: {} stored, {} refused", ok.len(), refused.len());
        stored.extend(ok);
        check_books(&app, &stored, &refused, &what).await;

        // 2b. A certain overlap: the poisoned event's group commit waits on the test's lock of
        // `events` while 20 good events are applied on top of it into the open group (the
        // service already reports their holds). When the lock goes, the commit fails: the open
        // group is refused too, and its holds are gone.
        let what = format!("{backend:?} overlap");
        saboteur.lock().await;
        let poisoned = vec!["gated-poison".to_string()];
        let first = send_each(&app, &poisoned, t);
        wait_for_holds(&app, &poisoned, &what).await;
        // The poisoned group is committing now (the writer starts a commit as soon as it has
        // applied a group and none is in flight): these go into the open group.
        let gated: Vec<String> = (0..20).map(|i| format!("gated-{i}")).collect();
        let second = send_each(&app, &gated, t);
        wait_for_holds(&app, &gated, &what).await;
        assert!(
            first.iter().chain(&second).all(|t| !t.is_finished()),
            "{what}: answered before the in-flight commit could finish"
        );
        saboteur.unlock().await;
        let (ok, gated_refused) =
            sort_answers(first.into_iter().chain(second).collect(), &what).await;
        assert!(
            ok.is_empty(),
            "{what}: acknowledged on top of a failed commit: {ok:?}"
        );
        assert_eq!(gated_refused.len(), 21, "{what}");
        refused.extend(gated_refused);
        check_books(&app, &stored, &refused, &what).await;

        // 3. The fault gone, every refused event is retried and stored, and every stored one
        // sent again is a duplicate: each message is held exactly once.
        saboteur.cure().await;
        let what = format!("{backend:?} retry");
        let retried: Vec<String> = refused.iter().cloned().collect();
        let (ok, again) = sort_answers(send_each(&app, &retried, t), &what).await;
        assert!(again.is_empty(), "{what}: refused again: {again:?}");
        assert_eq!(ok.len(), retried.len());
        let repeats: Vec<String> = stored.iter().cloned().collect();
        for task in send_each(&app, &repeats, t) {
            let (id, status, body) = task.await.unwrap();
            assert_eq!(status, 200, "{what}: {id}: {body}");
            assert_eq!(
                body["results"][0]["status"], "duplicate",
                "{what}: {id}: {body}"
            );
        }
        stored.extend(ok);
        assert_eq!(stored.len(), 5 + 51 + 21);
        check_books(&app, &stored, &BTreeSet::new(), &what).await;
        // And after a restart (the book rebuilt from the database alone), the same.
        let mut app = app;
        app.restart().await;
        check_books(
            &app,
            &stored,
            &BTreeSet::new(),
            &format!("{backend:?} restart"),
        )
        .await;
        drop(saboteur);
        app.stop().await;
    }
}

/// The same events, sent at once by several clients in different orders (Meta's retries racing
/// the business's own replays), are stored once each: one "stored" answer per event, every other
/// answer "duplicate", one row per key and one charge per message in the database, one capture
/// per message in the wallet. Neither backend has a unique index to fall back on (SQLite's look-up
/// indexes are full-text ones, PostgreSQL's are of hashes), so this is the writer's own check at
/// work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_the_same_events_are_stored_once() {
    use sqlx::Connection;
    const MESSAGES: usize = 30;
    const CLIENTS: usize = 6;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.top_up("shop", "pay-1", "100").await;
        let t = now() - 600;
        let ids: Vec<String> = (0..MESSAGES).map(|i| format!("wamid.race-{i}")).collect();
        // Each client sends every outbound record, rotated so the clients overlap in time.
        let mut sends = tokio::task::JoinSet::new();
        for c in 0..CLIENTS {
            let (client, base) = (app.client.clone(), app.base.clone());
            let mut batch: Vec<Value> = ids
                .iter()
                .map(|id| outbound(id, t, Some(("promo", "marketing"))))
                .collect();
            batch.rotate_left(c * MESSAGES / CLIENTS);
            sends.spawn(async move {
                let answer: Value = client
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(TOKEN)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["results"].as_array().unwrap().clone()
            });
        }
        let mut stored = std::collections::BTreeMap::<String, usize>::new();
        while let Some(results) = sends.join_next().await {
            for r in results.unwrap() {
                let status = r["status"].as_str().unwrap().to_string();
                assert!(
                    status == "stored" || status == "duplicate",
                    "{backend:?}: {r}"
                );
                if status == "stored" {
                    *stored
                        .entry(r["id"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
            }
        }
        assert_eq!(stored.len(), MESSAGES, "{backend:?}: {stored:?}");
        assert!(stored.values().all(|n| *n == 1), "{backend:?}: {stored:?}");
        // Then every client sends every delivery webhook, in its own order.
        let mut deliveries = tokio::task::JoinSet::new();
        for c in 0..CLIENTS {
            let (client, base) = (app.client.clone(), app.base.clone());
            let mut bodies: Vec<String> = ids
                .iter()
                .map(|id| status_webhook("shop", id, "delivered", t + 5, USER, json!({})))
                .collect();
            bodies.rotate_left(c * MESSAGES / CLIENTS);
            deliveries.spawn(async move {
                for body in bodies {
                    let sig =
                        tarifa_service::api::signature::sign(SECRET.as_bytes(), body.as_bytes());
                    let status = client
                        .post(format!("{base}/webhooks/meta"))
                        .header("X-Hub-Signature-256", sig)
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status();
                    assert_eq!(status, 200);
                }
            });
        }
        while let Some(done) = deliveries.join_next().await {
            done.unwrap();
        }
        let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
            .await
            .unwrap();
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
            let twice = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            assert!(
                twice.is_empty(),
                "{backend:?}: {} {what}s stored twice",
                twice.len()
            );
        }
        assert_eq!(
            app.store().counts().await.unwrap().0,
            2 * MESSAGES as i64,
            "{backend:?}: one outbound record and one delivery per message"
        );
        let charges = app
            .store()
            .business_charges("shop", 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(charges.len(), MESSAGES, "{backend:?}");
        // 100 EUR less one capture of 0.0702 EUR (Spain marketing × 1.2) per message.
        assert_eq!(app.wallet("shop").await["posted"], "97.894", "{backend:?}");
        conn.close().await.unwrap();
        app.stop().await;
    }
}

/// Without the CA that signed the receiver's certificate, the service refuses the connection:
/// the alert is retried and never reaches the receiver (TLS is verified, not merely spoken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_not_sent_to_an_https_receiver_the_service_cannot_verify() {
    let (https, received) = alert_receiver().await;
    let app = TestApp::spawn_with(Backend::Sqlite, Some(format!("{}/alerts", https.base))).await;
    app.top_up("shop", "p", "5.05").await;
    let t = now();
    let batch = json!([outbound("m", t, Some(("promo", "marketing")))]);
    assert_eq!(app.post("/v1/events", &batch).await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let alerts = app.store().alerts_of("shop").await.unwrap();
        if alerts.len() == 1 && alerts[0].1 >= 1 {
            assert_ne!(alerts[0].0, "delivered", "{alerts:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt: {alerts:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(received.lock().unwrap().is_empty());
    app.stop().await;
}

/// The service's own PostgreSQL connections over TLS with the server's certificate verified
/// (`sslmode=verify-full`, the server's certificate as `sslrootcert`, the name `localhost`):
/// every connection it opens to its database is TLS, and money moves through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_use_verified_tls() {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("TARIFA_TEST_DATABASE_URL") else {
        eprintln!("PostgreSQL TLS test skipped: TARIFA_TEST_DATABASE_URL is not set");
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let cert: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if ssl != "on" || std::fs::read(&cert).is_err() {
        eprintln!("PostgreSQL TLS test skipped: the server has ssl = {ssl} and its certificate {cert} is not readable here");
        return;
    }
    let app = TestApp::spawn_configured(Backend::Postgres, None, |c| {
        let url = c.database_url.replace("@127.0.0.1:", "@localhost:");
        c.database_url = format!("{url}?sslmode=verify-full&sslrootcert={cert}");
    })
    .await;
    app.top_up("shop", "tls-1", "7").await;
    assert_eq!(app.wallet("shop").await["posted"], "7");
    let url = app.config.database_url.split('?').next().unwrap();
    let database = url.rsplit('/').next().unwrap();
    let (tls, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(database)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(all > 0, "the service holds no connection to {database}");
    assert_eq!(tls, all, "every connection of the service is TLS");
    // Verified, not merely encrypted: the certificate names `localhost`, not `127.0.0.1`.
    let mut wrong_name = app.config.clone();
    wrong_name.database_url = wrong_name
        .database_url
        .replace("@localhost:", "@127.0.0.1:");
    let refused = tarifa_service::start(wrong_name).await;
    assert!(
        refused.is_err(),
        "a certificate for another name was accepted"
    );
    app.stop().await;
}

/// Problem 1 in the service: a customer written `+34 600 00-00-01` in one request and
/// `34600000001` in another is one customer: the window they opened covers the quote, and carts
/// and orders store the number as digits. Problem 5: times outside 2000-2099 are a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_notations_are_one_customer_and_times_are_range_checked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let t = now();
    let inbound = json!([{"type": "inbound", "id": "in-n", "at": t - 60, "business": "shop",
        "phone": "pn-1", "user": "+34 600 00-00-01"}]);
    let (status, body) = app.post("/v1/events", &inbound).await;
    assert_eq!(status, 200, "{body}");
    let (_, q) = app
        .post(
            "/v1/quote",
            &json!({"business": "shop", "phone": "pn-1", "user": USER, "at": t}),
        )
        .await;
    assert_eq!(q["customer_service_window_open"], true, "{q}");
    let (_, q) = app
        .post(
            "/v1/quote",
            &json!({"business": "shop", "phone": "pn-1", "user": "+34 600000001", "at": t}),
        )
        .await;
    assert_eq!(q["customer_service_window_open"], true, "{q}");
    let (status, body) = app
        .post(
            "/v1/orders",
            &json!({"business": "shop", "order_id": "o-n", "user": "+34 600 000 001",
            "total": "10", "currency": "EUR", "at": t}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (path, at) in [
        ("/v1/quote", json!(99_999_999_999i64)),
        ("/v1/quote", json!("0000-01-01T00:00:00Z")),
    ] {
        let (status, e) = app
            .post(
                path,
                &json!({"business": "shop", "phone": "pn-1", "user": USER, "at": at}),
            )
            .await;
        assert_eq!(status, 400, "{at}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("2000"),
            "{e}"
        );
    }
    let far = json!([{"type": "inbound", "id": "in-far", "at": 99_999_999_999i64, "business": "shop",
        "phone": "pn-1", "user": USER}]);
    let (status, e) = app.post("/v1/events", &far).await;
    assert_eq!((status, &e["stored"]), (422, &json!(0)), "{e}");
    let why = e["results"][0]["message"].as_str().unwrap();
    assert!(why.contains("`at`") && why.contains("2000-2099"), "{e}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Problem 4 of real traffic: the live wallet converges to the batch bill, whatever the order
// ---------------------------------------------------------------------------------------------

/// The wallet's charge of `message` as the reconciliation sees it matches the invoice: no
/// `wallet_charge` mismatch for the month.
async fn wallet_agrees_with_invoice(app: &TestApp, t: i64) {
    let month = tarifa_core::time::format_instant(t)[..7].to_string();
    let (status, rec) = app.get(&format!("/v1/reconciliation/shop/{month}")).await;
    assert_eq!(status, 200, "{rec}");
    assert!(
        rec["mismatches_by_kind"].get("wallet_charge").is_none(),
        "{rec}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_before_send_record_holds_nothing_and_charges_once() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.top_up("shop", "p", "10").await;
        let t = now() - 60;
        let delivered = status_webhook("shop", "m-early", "delivered", t + 2, USER, json!({}));
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        let batch = json!([outbound("m-early", t, Some(("promo", "marketing")))]);
        let (status, body) = app.post("/v1/events", &batch).await;
        assert_eq!(status, 200, "{body}");
        let w = app.wallet("shop").await;
        // One marketing message at the resale price, charged once; nothing left pending.
        assert_eq!(
            (&w["posted"], &w["pending"], &w["available"]),
            (&json!("9.9298"), &json!("0"), &json!("9.9298")),
            "{w}"
        );
        wallet_agrees_with_invoice(&app, t).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_record_of_delivered_message_is_not_refused_402() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.top_up("shop", "p", "0.08").await;
        let t = now() - 60;
        let delivered = status_webhook("shop", "m-paid", "delivered", t + 2, USER, json!({}));
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        // The wallet paid for it already (0.0702 of 0.08): the send record is not a new debt.
        let batch = json!([outbound("m-paid", t, Some(("promo", "marketing")))]);
        let (status, body) = app.post("/v1/events", &batch).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(app.wallet("shop").await["available"], "0.0098");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_on_a_later_status_corrects_the_charge() {
    for backend in backends() {
        let mut app = TestApp::spawn(backend).await;
        app.top_up("shop", "p", "10").await;
        let t = now() - 60;
        // Recorded as utility, delivered without pricing: the utility price is captured.
        let batch = json!([outbound("m-late", t, Some(("receipt", "utility")))]);
        assert_eq!(app.post("/v1/events", &batch).await.0, 200);
        let delivered = status_webhook("shop", "m-late", "delivered", t + 2, USER, json!({}));
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        assert_eq!(app.wallet("shop").await["posted"], "9.98008");
        // The `read` carries Meta's pricing: marketing. The charge is corrected to it.
        let pricing = json!({"pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}});
        let read = status_webhook("shop", "m-late", "read", t + 9, USER, pricing);
        assert_eq!(app.webhook(&read).await.status(), 200);
        assert_eq!(app.wallet("shop").await["posted"], "9.9298");
        wallet_agrees_with_invoice(&app, t).await;
        // A replay of the same evidence after a restart changes nothing.
        app.restart().await;
        assert_eq!(app.webhook(&read).await.status(), 200);
        assert_eq!(app.wallet("shop").await["posted"], "9.9298");
        wallet_agrees_with_invoice(&app, t).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_inbound_message_refunds_the_charge() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.top_up("shop", "p", "10").await;
        let t = now() - 600;
        let batch = json!([outbound("m-ad", t, Some(("promo", "marketing")))]);
        assert_eq!(app.post("/v1/events", &batch).await.0, 200);
        let delivered = status_webhook("shop", "m-ad", "delivered", t + 2, USER, json!({}));
        assert_eq!(app.webhook(&delivered).await.status(), 200);
        assert_eq!(app.wallet("shop").await["posted"], "9.9298");
        // The user's click-to-WhatsApp message, written before the reply, arrives late: the
        // reply opened a free entry-point window (D-5) and the charge is refunded.
        let ad = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "shop", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "34910000000", "phone_number_id": "pn-1"},
                "messages": [{"from": USER, "id": "in-ad", "timestamp": (t - 60).to_string(),
                    "type": "text", "text": {"body": "hola"},
                    "referral": {"source_type": "ad", "source_id": "1"}}]
            }}]}]
        })
        .to_string();
        assert_eq!(app.webhook(&ad).await.status(), 200);
        let w = app.wallet("shop").await;
        assert_eq!(
            (&w["posted"], &w["pending"]),
            (&json!("10"), &json!("0")),
            "{w}"
        );
        wallet_agrees_with_invoice(&app, t).await;
        app.stop().await;
    }
}

/// Top-ups are bounded and refused in words: no sign or exponent, more than 0, at most
/// 1,000,000,000 with 6 decimals, an id of 1 to 128 characters, none for a postpaid business;
/// a reused id says so without Rust's debug text, and never echoes a long input whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ups_are_bounded_and_refused_in_words() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (amount, status) in [
        (json!("+5"), 400),
        (json!("1e3"), 400),
        (json!("-2"), 400),
        (json!("18446744073709.551616"), 422),
        (json!("0"), 422),
        (json!("1.0000001"), 422),
    ] {
        let (got, e) = app
            .post(
                "/v1/wallets/shop/topups",
                &json!({"id": "b-1", "amount": amount}),
            )
            .await;
        assert_eq!(got, status, "{amount}: {e}");
    }
    let (status, e) = app.top_up("post", "p-1", "5").await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("postpaid"),
        "{e}"
    );
    assert_eq!(app.top_up("shop", "dup-1", "5").await.0, 201);
    let (status, e) = app.top_up("shop", "dup-1", "6").await;
    assert_eq!(status, 422, "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("different content") && !message.contains('{'),
        "{message}"
    );
    let long = "x".repeat(10_000);
    let (status, e) = app.top_up("shop", &long, "5").await;
    assert_eq!(status, 400);
    assert!(
        e.to_string().len() < 300,
        "the id is not echoed: {} bytes",
        e.to_string().len()
    );
    assert_eq!(app.wallet("shop").await["posted"], "5");
    app.stop().await;
}

/// An event id of 10,000 characters is rejected (never stored), and the answer does not echo
/// it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_event_ids_are_rejected_not_stored() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let long = "w".repeat(10_000);
    let batch = json!([{"type": "inbound", "id": long, "at": now(), "business": "shop",
        "phone": "pn-1", "user": USER}]);
    let (status, body) = app.post("/v1/events", &batch).await;
    assert_eq!((status, &body["stored"]), (422, &json!(0)), "{body}");
    assert!(
        body.to_string().len() < 1_000,
        "{} bytes",
        body.to_string().len()
    );
    app.stop().await;
}
