//! Sales recovery ("Recuperador de Vendas") scenarios on a simulated clock, against the real
//! service on SQLite and (when `TARIFA_TEST_DATABASE_URL` is set) PostgreSQL: the scheduler pass
//! is called with the simulated instant, events carry simulated times.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tarifa_core::time::{Calendar, DAY, HOUR, MINUTE};
use tarifa_service::runtime::recovery::{Outgoing, Pass, Recovery, Sender};

const PERIOD: &str = "from=2000-01-01&to=2099-12-31";

/// An hour ago, on the minute: the simulated clock starts near the real one, so carts (reported
/// with the real clock) are fresh and the book's history window behaves as in production.
fn base() -> i64 {
    (now() - HOUR) / MINUTE * MINUTE
}

/// The latest local `hh:mm` in Madrid (the shop's time zone) before now.
fn last_local(minute: u32) -> i64 {
    let madrid = Calendar::new("Europe/Madrid").unwrap();
    let (today, _) = madrid.wall_clock(now());
    let t = madrid.at_wall_clock(today, minute);
    if t <= now() {
        t
    } else {
        madrid.at_wall_clock(tarifa_core::time::LocalDate(today.0 - 1), minute)
    }
}

fn settings(extra: Value) -> Value {
    let mut s = json!({
        "phone": "pn-1",
        "delay_minutes": 30,
        "coupon": {"mode": "unique", "prefix": "VOLTA"},
        "coupon_expiry_hours": 24,
        "frequency": {"max": 1, "days": 7},
        "after_coupon_days": 0,
        "message": "Hola {{name}}! Tu carrito te espera: {{cart}}. Usa {{coupon_code}} antes de {{coupon_expiry}}: {{coupon_link}}",
        "template": {"name": "carrito_abandonado", "language": "es", "params": ["{{name}}", "{{coupon_code}}"]},
        "link": "https://shop.example/cart?coupon={{coupon_code}}&r={{recovery_id}}"
    });
    if let (Value::Object(s), Value::Object(e)) = (&mut s, extra) {
        s.extend(e);
    }
    s
}

/// A recovery-ready shop: a 10 % coupon, the settings, 100 EUR in the wallet.
async fn ready(backend: Backend, extra: Value) -> TestApp {
    let app = TestApp::spawn(backend).await;
    let (s, b) = app
        .put(
            "/v1/stores/shop/coupons/VOLTA",
            &json!({"percent_off": "10"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.put("/v1/stores/shop/recovery", &settings(extra)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.top_up("shop", "t1", "100").await;
    assert!(s == 200 || s == 201, "{b}");
    app
}

async fn tick(app: &TestApp, at: i64) -> Pass {
    app.app().recovery.tick(app.app(), at).await.unwrap()
}

async fn chat(app: &TestApp, id: &str, user: &str, at: i64, text: &str) {
    let r = app
        .webhook(&inbound_text_webhook("shop", id, user, at, text))
        .await;
    assert_eq!(r.status(), 200);
}

async fn cart(app: &TestApp, cart_id: &str, user: &str, at: i64) -> Value {
    let (s, b) = app
        .post(
            "/v1/carts",
            &json!({"business": "shop", "cart_id": cart_id, "user": user, "name": "Ana",
                    "items": [{"name": "Camiseta", "quantity": 2, "price": "19.95"}],
                    "total": "39.90", "currency": "EUR", "link": "https://shop.example/c/1",
                    "updated_at": at}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn recoveries(app: &TestApp) -> Vec<Value> {
    let (s, b) = app
        .get(&format!("/v1/stores/shop/recoveries?{PERIOD}"))
        .await;
    assert_eq!(s, 200, "{b}");
    b["recoveries"].as_array().unwrap().clone()
}

async fn of_user(app: &TestApp, user: &str) -> Vec<Value> {
    recoveries(app)
        .await
        .into_iter()
        .filter(|r| r["user"] == user)
        .collect()
}

/// Ticks every `interval` from `from` (inclusive) to `to` (exclusive).
async fn run_clock(app: &TestApp, from: i64, to: i64, interval: i64) {
    let mut t = from;
    while t < to {
        tick(app, t).await;
        t += interval;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_leaves_between_the_delay_and_one_interval_later() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        // Five customers, each with a different phase of the 5-minute scheduler.
        for k in 0..5i64 {
            let user = format!("3460000001{k}");
            chat(&app, &format!("in-{k}"), &user, t0 + k * 60 + 7, "hola").await;
        }
        // A later message moves the due time: the delay counts from the last interaction.
        chat(&app, "in-late", "34600000014", t0 + 20 * MINUTE, "¿envío?").await;
        run_clock(&app, t0 + 2 * MINUTE, t0 + 2 * HOUR, 5 * MINUTE).await;
        for k in 0..5i64 {
            let user = format!("3460000001{k}");
            let rs = of_user(&app, &user).await;
            assert_eq!(rs.len(), 1, "{rs:?}");
            let r = &rs[0];
            assert_eq!(r["state"], "sent", "{r}");
            assert_eq!(r["channel"], "free_form", "inside the window: {r}");
            let last = r["last_at"].as_i64().unwrap();
            let sent = r["sent_at"].as_i64().unwrap();
            let due = last + 30 * MINUTE;
            assert!(
                sent >= due && sent < due + 5 * MINUTE,
                "sent {} s after the last interaction",
                sent - last
            );
            let text = r["text"].as_str().unwrap();
            assert!(text.contains("VOLTA"), "{text}");
        }
        let late = of_user(&app, "34600000014").await;
        assert_eq!(late[0]["last_at"], t0 + 20 * MINUTE);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_after_the_trigger_stops_the_message() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        // Ordered through the API: the open recovery is closed at once.
        cart(&app, "c1", "34600000021", t0).await;
        let (s, b) = app
            .post(
                "/v1/orders",
                &json!({"business": "shop", "order_id": "o1", "user": "34600000021",
                        "total": "39.90", "currency": "EUR", "at": t0 + 10 * MINUTE}),
            )
            .await;
        assert_eq!((s, b["recoveries_closed"].clone()), (200, json!(1)), "{b}");
        // The order reaches the database while the recovery is queued (e.g. another instance
        // stored it): the check right before sending catches it.
        cart(&app, "c2", "34600000022", t0).await;
        let store = &app.app().recovery.store;
        store
            .put_order(&tarifa_service::storage::recovery::OrderRow {
                business: "shop".into(),
                order_id: "o2".into(),
                user: "34600000022".into(),
                at: t0 + 20 * MINUTE,
                total: "39.90".into(),
                currency: "EUR".into(),
                coupon: None,
                recovery: None,
                cart_id: Some("c2".into()),
            })
            .await
            .unwrap();
        let pass = tick(&app, t0 + 31 * MINUTE).await;
        assert_eq!((pass.sent, pass.skipped), (0, 1), "{pass:?}");
        for user in ["34600000021", "34600000022"] {
            let r = &of_user(&app, user).await[0];
            assert_eq!(
                (&r["state"], &r["reason"]),
                (&json!("skipped"), &json!("purchased"))
            );
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frequency_cap_and_the_post_coupon_period_hold_across_many_triggers() {
    for backend in backends() {
        let app = ready(
            backend,
            json!({"frequency": {"max": 2, "days": 7}, "after_coupon_days": 10}),
        )
        .await;
        let t0 = base() - 20 * DAY;
        let user = "34600000031";
        // One chat a day for 20 days: each is a new trigger after the last one was decided.
        for day in 0..20i64 {
            let at = t0 + day * DAY;
            chat(&app, &format!("in-{day}"), user, at, "hola").await;
            tick(&app, at + 31 * MINUTE).await;
            if day == 8 {
                // Day 8: the customer uses the code of the day-7 message.
                let code = of_user(&app, user)
                    .await
                    .into_iter()
                    .rfind(|r| r["state"] == "sent")
                    .unwrap()["coupon_code"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let (s, b) = app
                    .post(
                        &format!("/v1/coupons/{code}/redeem"),
                        &json!({"business": "shop", "user": user, "order_total": "50", "at": at + HOUR}),
                    )
                    .await;
                assert_eq!(s, 200, "{b}");
            }
        }
        let outcome: Vec<String> = of_user(&app, user)
            .await
            .iter()
            .map(|r| {
                if r["state"] == "sent" {
                    "sent".to_string()
                } else {
                    r["reason"].as_str().unwrap().to_string()
                }
            })
            .collect();
        let cap = "frequency_cap".to_string();
        let after = "after_coupon".to_string();
        let sent = "sent".to_string();
        let mut expected = vec![sent.clone(), sent.clone()]; // days 0, 1
        expected.extend(vec![cap.clone(); 5]); // days 2–6: two in the last 7 days
        expected.extend(vec![sent.clone(); 2]); // days 7, 8
        expected.extend(vec![after.clone(); 10]); // days 9–18: coupon used on day 8
        expected.push(sent.clone()); // day 19
        assert_eq!(outcome, expected);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_defer_to_the_next_allowed_time() {
    for backend in backends() {
        let app = ready(
            backend,
            json!({"quiet_hours": {"from": "21:00", "to": "09:00"}}),
        )
        .await;
        let madrid = Calendar::new("Europe/Madrid").unwrap();
        let evening = last_local(20 * 60 + 50);
        cart(&app, "c1", "34600000041", evening).await;
        run_clock(&app, evening + 2 * MINUTE, evening + 14 * HOUR, 5 * MINUTE).await;
        let r = &of_user(&app, "34600000041").await[0];
        assert_eq!(r["state"], "sent", "{r}");
        let sent = r["sent_at"].as_i64().unwrap();
        let (_, minute) = madrid.wall_clock(sent);
        assert!(
            (9 * 60..9 * 60 + 5).contains(&minute),
            "sent at minute {minute} of the local day"
        );
        assert_eq!(r["channel"], "template", "no chat: outside the window");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_and_the_stop_keyword_are_honoured() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        // STOP: no recovery, even for a later cart.
        chat(&app, "in-a1", "34600000051", t0, "hola").await;
        chat(&app, "in-a2", "34600000051", t0 + MINUTE, "  stop ").await;
        // Meta's marketing opt-out (131050) on an earlier template.
        let (s, b) = app
            .post(
                "/v1/events",
                &json!({"events": [
                    {"type": "outbound", "id": "m-b", "at": t0 - 2 * DAY, "business": "shop", "phone": "pn-1",
                     "user": "34600000052", "template": {"name": "promo", "category": "marketing"}},
                    {"type": "status", "id": "m-b", "at": t0 - 2 * DAY + 5, "status": "failed", "errors": [131050],
                     "business": "shop", "recipient": "34600000052"}
                ]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        tick(&app, t0 + 2 * MINUTE).await;
        cart(&app, "c-a", "34600000051", t0 + 5 * MINUTE).await;
        cart(&app, "c-b", "34600000052", t0 + 5 * MINUTE).await;
        // A customer who opted out of marketing but is chatting gets a free-form message.
        chat(&app, "in-c", "34600000053", t0 + 5 * MINUTE, "hola").await;
        app.post(
            "/v1/events",
            &json!({"events": [
                {"type": "status", "id": "m-c", "at": t0 - DAY, "status": "failed", "errors": [131050],
                 "business": "shop", "recipient": "34600000053"}]}),
        )
        .await;
        run_clock(&app, t0 + 10 * MINUTE, t0 + HOUR, 5 * MINUTE).await;
        let a: Vec<Value> = of_user(&app, "34600000051").await;
        assert!(a.iter().all(|r| r["reason"] == "stop_keyword"), "{a:?}");
        assert_eq!(a.len(), 2, "the open bot recovery and the cart: {a:?}");
        let b = &of_user(&app, "34600000052").await[0];
        assert_eq!(
            (&b["state"], &b["reason"]),
            (&json!("skipped"), &json!("marketing_opt_out"))
        );
        let c = &of_user(&app, "34600000053").await[0];
        assert_eq!(
            (&c["state"], &c["channel"]),
            (&json!("sent"), &json!("free_form"))
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupons_expire_on_time_and_are_judged_by_their_current_settings() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        for (i, user) in ["34600000061", "34600000062", "34600000063"]
            .iter()
            .enumerate()
        {
            cart(&app, &format!("c{i}"), user, t0).await;
        }
        tick(&app, t0 + 31 * MINUTE).await;
        let code = |r: &Value| r["coupon_code"].as_str().unwrap().to_string();
        let r1 = of_user(&app, "34600000061").await[0].clone();
        let sent = r1["sent_at"].as_i64().unwrap();
        assert_eq!(r1["coupon_expires_at"], sent + 24 * HOUR);
        let redeem = |code: String, user: &'static str, at: i64| {
            let app = &app;
            async move {
                app.post(
                    &format!("/v1/coupons/{code}/redeem"),
                    &json!({"business": "shop", "user": user, "order_total": "39.90", "at": at}),
                )
                .await
            }
        };
        // Before expiry: 10 % off; the code is single use.
        let (s, b) = redeem(code(&r1), "34600000061", sent + 23 * HOUR).await;
        assert_eq!((s, &b["discount"]), (200, &json!("3.99")), "{b}");
        let (s, b) = redeem(code(&r1), "34600000061", sent + 23 * HOUR).await;
        assert_eq!((s, &b["reason"]), (409, &json!("already_used")), "{b}");
        // Someone else's unique code is refused.
        let r3 = of_user(&app, "34600000063").await[0].clone();
        let (s, b) = redeem(code(&r3), "34600000061", sent + HOUR).await;
        assert_eq!((s, &b["reason"]), (409, &json!("other_customer")), "{b}");
        // At the expiry instant the code is refused…
        let r2 = of_user(&app, "34600000062").await[0].clone();
        let (s, b) = redeem(code(&r2), "34600000062", sent + 24 * HOUR).await;
        assert_eq!((s, &b["reason"]), (409, &json!("expired")), "{b}");
        // …until the store lengthens the coupon: its current settings apply (seed 004).
        let (s, _) = app
            .put(
                "/v1/stores/shop/coupons/VOLTA",
                &json!({"percent_off": "15", "expiry_hours": 48}),
            )
            .await;
        assert_eq!(s, 200);
        let (s, b) = redeem(code(&r2), "34600000062", sent + 25 * HOUR).await;
        assert_eq!((s, &b["discount"]), (200, &json!("5.99")), "{b}");
        // Turned off: refused.
        app.put(
            "/v1/stores/shop/coupons/VOLTA",
            &json!({"percent_off": "15", "active": false}),
        )
        .await;
        let (s, b) = redeem(code(&r3), "34600000063", sent + HOUR).await;
        assert_eq!((s, &b["reason"]), (409, &json!("inactive")), "{b}");
        let (s, b) = redeem("NOPE".into(), "34600000063", sent).await;
        assert_eq!(
            (s, &b["error"]["code"]),
            (404, &json!("unknown_code")),
            "{b}"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_form_inside_the_window_template_outside_never_to_us_numbers_with_the_cost_held() {
    for backend in backends() {
        let app = ready(
            backend,
            json!({"coupon": {"mode": "fixed", "code": "VOLTA"}}),
        )
        .await;
        let t0 = base();
        chat(&app, "in-1", "34600000071", t0, "hola").await;
        cart(&app, "c2", "34600000072", t0).await;
        cart(&app, "c3", "12025550173", t0).await;
        let before = app.wallet("shop").await;
        let pass = tick(&app, t0 + 31 * MINUTE).await;
        assert_eq!((pass.sent, pass.skipped), (2, 1), "{pass:?}");
        let free = &of_user(&app, "34600000071").await[0];
        let template = &of_user(&app, "34600000072").await[0];
        let us = &of_user(&app, "12025550173").await[0];
        assert_eq!(free["channel"], "free_form");
        assert_eq!(template["channel"], "template");
        assert_eq!(us["reason"], "us_marketing_not_delivered");
        assert_eq!(template["text"], "carrito_abandonado(Ana, VOLTA)");
        // The cost is what a quote for the same message says, and it is held in the wallet.
        let (_, q) = app
            .post(
                "/v1/quote",
                &json!({"business": "shop", "phone": "pn-1", "user": "34600000072",
                        "template": {"name": "carrito_abandonado", "category": "marketing"},
                        "at": t0 + 31 * MINUTE}),
            )
            .await;
        assert_eq!(template["cost"], q["amount"], "{q}");
        let marketing: rust_decimal::Decimal = q["amount"].as_str().unwrap().parse().unwrap();
        assert!(marketing > rust_decimal::Decimal::ZERO);
        let after = app.wallet("shop").await;
        let pending = |w: &Value| -> rust_decimal::Decimal {
            w["pending"].as_str().unwrap().parse().unwrap()
        };
        let free_cost: rust_decimal::Decimal = free["cost"].as_str().unwrap().parse().unwrap();
        // Holds lower the wallet's pending balance.
        assert_eq!(pending(&before) - pending(&after), marketing + free_cost);
        // Meta's delivery webhook captures the hold at the rated amount.
        let id = template["message_id"].as_str().unwrap();
        let r = app
            .webhook(&status_webhook(
                "shop",
                id,
                "delivered",
                t0 + 32 * MINUTE,
                "34600000072",
                json!({}),
            ))
            .await;
        assert_eq!(r.status(), 200);
        let settled = app.wallet("shop").await;
        assert_eq!(pending(&settled) - pending(&after), marketing);
        let (_, report) = app
            .get(&format!("/v1/stores/shop/recovery/report?{}", PERIOD))
            .await;
        assert_eq!(
            report["cost"]["charged"],
            json!(marketing.normalize().to_string()),
            "{report}"
        );
        assert_eq!(report["sent"]["template"], 1);
        assert_eq!(report["skipped"]["us_marketing_not_delivered"], 1);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_recovered_orders_revenue_cost_and_return() {
    for backend in backends() {
        let app = ready(backend, json!({"attribution_hours": 48})).await;
        let t0 = base();
        for k in 1..=4 {
            cart(&app, &format!("c{k}"), &format!("3460000008{k}"), t0).await;
        }
        tick(&app, t0 + 31 * MINUTE).await;
        let r = |k: u32| {
            let app = &app;
            async move { of_user(app, &format!("3460000008{k}")).await[0].clone() }
        };
        let (r1, r2) = (r(1).await, r(2).await);
        let order = |id: &str,
                     k: u32,
                     at: i64,
                     coupon: Option<String>,
                     recovery: Option<String>| {
            json!({"business": "shop", "order_id": id, "user": format!("3460000008{k}"),
                   "total": "100", "currency": "EUR", "at": at, "coupon": coupon, "recovery": recovery})
        };
        let sent = r1["sent_at"].as_i64().unwrap();
        for body in [
            order(
                "o1",
                1,
                sent + HOUR,
                r1["coupon_code"].as_str().map(String::from),
                None,
            ),
            order(
                "o2",
                2,
                sent + 2 * HOUR,
                None,
                r2["id"].as_str().map(String::from),
            ),
            order("o3", 3, sent + 47 * HOUR, None, None),
            order("o4", 4, sent + 49 * HOUR, None, None),
        ] {
            // Problem 5 of real traffic: the order closes the sent recovery it wins back (by
            // coupon, link or window, as the report attributes it); o4 is outside the window.
            let (s, b) = app.post("/v1/orders", &body).await;
            assert_eq!(s, 200, "{b}");
            let won = if body["order_id"] == "o4" { 0 } else { 1 };
            assert_eq!(b["recoveries_closed"], won, "{b}");
            let this = r(body["user"].as_str().unwrap()[10..].parse().unwrap()).await;
            let state = if won == 1 { "recovered" } else { "sent" };
            assert_eq!(this["state"], state, "{this}");
        }
        // A replayed order closes nothing again.
        let (_, b) = app
            .post("/v1/orders", &order("o1", 1, sent + HOUR, None, None))
            .await;
        assert_eq!(
            (&b["status"], &b["recoveries_closed"]),
            (&json!("duplicate"), &json!(0))
        );
        let (s, rep) = app
            .get(&format!("/v1/stores/shop/recovery/report?{PERIOD}"))
            .await;
        assert_eq!(s, 200, "{rep}");
        assert_eq!(rep["triggers"]["cart"], 4);
        assert_eq!(rep["sent"]["total"], 4);
        assert_eq!(rep["recovered"]["orders"], 3, "{rep}");
        assert_eq!(
            (
                &rep["recovered"]["by_coupon"],
                &rep["recovered"]["by_link"],
                &rep["recovered"]["by_window"]
            ),
            (&json!(1), &json!(1), &json!(1))
        );
        assert_eq!(rep["recovered"]["rate"], "0.75");
        assert_eq!(rep["revenue"]["EUR"], "300");
        let cost: rust_decimal::Decimal = rep["cost"]["total"].as_str().unwrap().parse().unwrap();
        assert!(cost > rust_decimal::Decimal::ZERO);
        let expected = ((rust_decimal::Decimal::from(300) - cost) / cost)
            .round_dp(4)
            .normalize();
        assert_eq!(rep["return_on_cost"], json!(expected.to_string()));
        app.stop().await;
    }
}

/// Records what it was asked to send.
struct Capture(Mutex<Vec<Outgoing>>);

impl Sender for Capture {
    fn send<'a>(
        &'a self,
        m: &'a Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<String>> + Send + 'a>>
    {
        Box::pin(async move {
            // A slow network: the other instance gets every chance to take the same row.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.0.lock().unwrap().push(m.clone());
            Ok(format!("wamid.capture.{}", m.recovery))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scheduler_instances_never_send_the_same_recovery_twice() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        let n = 200;
        for k in 0..n {
            cart(&app, &format!("c{k}"), &format!("346001{k:05}"), t0).await;
        }
        let capture = Arc::new(Capture(Mutex::new(Vec::new())));
        let section = app.app().recovery.section.clone();
        let make = || async {
            let store = tarifa_service::storage::Store::open(&app.config.database_url)
                .await
                .unwrap();
            Recovery::new(
                tarifa_service::storage::recovery::RecoveryStore { store },
                capture.clone(),
                section.clone(),
            )
        };
        let (one, two) = (make().await, make().await);
        let at = t0 + 31 * MINUTE;
        let (p1, p2) = tokio::join!(one.tick(app.app(), at), two.tick(app.app(), at));
        let (p1, p2) = (p1.unwrap(), p2.unwrap());
        assert_eq!(p1.sent + p2.sent, n, "{p1:?} {p2:?}");
        if backend == Backend::Postgres {
            // Both really worked the queue (FOR UPDATE SKIP LOCKED hands each its own rows).
            assert!(p1.sent > 0 && p2.sent > 0, "{p1:?} {p2:?}");
        }
        let sent = capture.0.lock().unwrap().clone();
        let mut ids: Vec<&str> = sent.iter().map(|m| m.recovery.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n as usize, "a recovery was sent twice");
        assert_eq!(sent.len(), n as usize);
        one.store.store.close().await;
        two.store.store.close().await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_downtime_due_recoveries_go_out_once() {
    for backend in backends() {
        let mut app = ready(backend, json!({})).await;
        let t0 = base();
        for k in 0..5 {
            cart(&app, &format!("c{k}"), &format!("3460000009{k}"), t0).await;
        }
        // A cart from two days ago that nobody handled: too late to be welcome.
        cart(&app, "old", "34600000099", t0 - 2 * DAY + 2 * HOUR).await;
        // The service is down for two hours, then comes back.
        app.restart().await;
        let later = t0 + 2 * HOUR + 31 * MINUTE;
        let first = tick(&app, later).await;
        let second = tick(&app, later + 5 * MINUTE).await;
        assert_eq!((first.sent, second.sent), (5, 0), "{first:?} {second:?}");
        let all = recoveries(&app).await;
        assert_eq!(all.iter().filter(|r| r["state"] == "sent").count(), 5);
        // The stale cart was not even scheduled (its due time is over a day old).
        assert!(of_user(&app, "34600000099").await.is_empty());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_stops_while_sending_never_sends_twice() {
    for backend in backends() {
        let app = ready(backend, json!({})).await;
        let t0 = base();
        cart(&app, "c1", "34600000101", t0).await;
        cart(&app, "c2", "34600000102", t0).await;
        let store = &app.app().recovery.store;
        // Instance "gone" claimed both and had committed `sending` for one when it died.
        let claimed = store
            .claim("gone", t0 + 31 * MINUTE, t0 + 36 * MINUTE, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let sending = &claimed[0];
        assert!(store
            .start_sending(
                sending,
                "gone",
                "template",
                "x",
                None,
                None,
                "0.1",
                "EUR",
                t0 + 31 * MINUTE
            )
            .await
            .unwrap());
        // Before the lease ends nobody else takes them; after it, the claimed one is sent once
        // and the one that may have left is closed as interrupted.
        assert_eq!(tick(&app, t0 + 33 * MINUTE).await.sent, 0);
        let pass = tick(&app, t0 + 37 * MINUTE).await;
        assert_eq!(pass.sent, 1, "{pass:?}");
        let r = store.get(&sending.id).await.unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.reason.as_str()),
            ("skipped", "interrupted")
        );
        let other = store.get(&claimed[1].id).await.unwrap().unwrap();
        assert_eq!(other.state, "sent");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated_with_the_field_named() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, b) = app
        .put(
            "/v1/stores/shop/recovery",
            &settings(json!({"delay_minutes": 90})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["delay_minutes", "coupon.prefix"], "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("between 5 and 60"));
    let (s, b) = app
        .put("/v1/stores/shop/recovery", &settings(json!({"delay": 30})))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `delay`"),
        "{b}"
    );
    let (s, b) = app.get("/v1/stores/nope/recovery").await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("unknown_business")));
    let (s, b) = app
        .put(
            "/v1/stores/shop/coupons/VOLTA",
            &json!({"percent_off": "150"}),
        )
        .await;
    assert_eq!(
        (s, &b["error"]["fields"][0]["field"]),
        (422, &json!("percent_off")),
        "{b}"
    );
    let (s, b) = app
        .post("/v1/carts", &json!({"business": "shop", "cart_id": "c", "user": "+34 600", "total": "1", "currency": "EUR"}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().starts_with("user:"),
        "{b}"
    );
    app.stop().await;
}

/// What the Graph API stand-in saw: (phone number id, authorization header, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Meta's Graph API as a local HTTPS server (its certificate signed by a CA the test makes):
/// records each `POST /{phone}/messages`. Returns the base URL, the server and what it saw.
async fn graph_api() -> (String, TestHttps, Seen) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    let seen: Seen = Arc::default();
    let router = axum::Router::new()
        .route(
            "/v23.0/{phone}/messages",
            axum::routing::post(
                |State(seen): State<Seen>,
                 Path(phone): Path<String>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push((phone, auth, body));
                        s.len()
                    };
                    axum::Json(json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.graph.{n}")}]}))
                },
            ),
        )
        .with_state(seen.clone());
    let https = TestHttps::serve(router).await;
    (format!("{}/v23.0", https.base), https, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_api_sender_posts_over_https_text_inside_the_window_and_templates_outside() {
    let (graph, https, seen) = graph_api().await;
    let app = ready(Backend::Sqlite, json!({})).await;
    // The client the service builds for the sender, trusting the operator's CA bundle.
    let timeout = std::time::Duration::from_secs(20);
    let sender = tarifa_service::runtime::recovery::CloudApi {
        graph_url: graph,
        token: "EAAG-test".into(),
        client: tarifa_service::runtime::https::client(timeout, Some(&https.ca_file)).unwrap(),
    };
    let scheduler = Recovery::new(
        app.app().recovery.store.clone(),
        Arc::new(sender),
        app.app().recovery.section.clone(),
    );
    let t0 = base();
    chat(&app, "in-1", "34600000111", t0, "hola").await;
    cart(&app, "c2", "34600000112", t0).await;
    let pass = scheduler.tick(app.app(), t0 + 31 * MINUTE).await.unwrap();
    assert_eq!(pass.sent, 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (phone, auth, body) in &seen {
        assert_eq!(
            (phone.as_str(), auth.as_str()),
            ("pn-1", "Bearer EAAG-test")
        );
        match body["to"].as_str().unwrap() {
            "34600000111" => {
                assert_eq!(body["type"], "text");
                assert!(body["text"]["body"].as_str().unwrap().contains("VOLTA"));
            }
            "34600000112" => {
                assert_eq!(body["type"], "template");
                assert_eq!(body["template"]["name"], "carrito_abandonado");
                assert_eq!(
                    body["template"]["components"][0]["parameters"][0]["text"],
                    "Ana"
                );
            }
            other => panic!("unexpected recipient {other}"),
        }
    }
    let ids: Vec<String> = of_user(&app, "34600000112")
        .await
        .iter()
        .map(|r| r["message_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids[0].starts_with("wamid.graph."), "{ids:?}");
    app.stop().await;
}
