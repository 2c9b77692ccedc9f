//! `tarifa load`: an open-loop load generator for `tarifa serve`.
//!
//! Request `i` is scheduled at `start + i / rate`, whatever happened to the earlier ones, and its
//! latency is measured from that scheduled instant: when the server (or the generator) falls
//! behind, the wait counts, so there is no coordinated omission. `connections` workers, each with
//! one HTTP/1.1 keep-alive connection in effect, take the next request number from a shared
//! counter, sleep until its time if it is still ahead, send it and record the latency.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Signed Meta status webhooks to POST /webhooks/meta.
    Webhook,
    /// Price quotes to POST /v1/quote.
    Quote,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Base URL of the running service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, value_enum, default_value = "webhook")]
    kind: Kind,
    /// Target requests per second (open loop).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Meta app secret (signs webhook bodies).
    #[arg(long, default_value = "sample-app-secret")]
    secret: String,
    /// Bearer token for /v1.
    #[arg(long, default_value = "sample-token")]
    token: String,
    /// Business (WABA id in webhooks, `business` in quotes).
    #[arg(long, default_value = "waba-eu")]
    business: String,
    /// Distinct recipients (webhooks) or users (quotes): numbers 346000xxxxx.
    #[arg(long, default_value_t = 4000)]
    recipients: u64,
    /// Statuses per webhook body.
    #[arg(long, default_value_t = 1)]
    events_per_webhook: usize,
    /// Generator threads (tokio workers).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    ok: u64,
    by_status: BTreeMap<String, u64>,
}

struct Shared {
    next: AtomicU64,
    total: u64,
    rate: f64,
    start: tokio::time::Instant,
    nonce: u64,
    unix_start: i64,
}

pub fn run(args: &LoadArgs) -> Result<()> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number");
    }
    if args.connections == 0 || args.events_per_webhook == 0 || args.recipients == 0 {
        bail!("--connections, --recipients and --events-per-webhook must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(drive(args))
}

async fn drive(args: &LoadArgs) -> Result<()> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let base = args.url.trim_end_matches('/');
    let url: Arc<str> = match args.kind {
        Kind::Webhook => format!("{base}/webhooks/meta").into(),
        Kind::Quote => format!("{base}/v1/quote").into(),
    };
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let total = (args.rate * args.duration).round().max(1.0) as u64;
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        total,
        rate: args.rate,
        // A little head start so that every connection is being opened when the clock starts.
        start: tokio::time::Instant::now() + Duration::from_millis(50),
        nonce: since_epoch.as_nanos() as u64,
        unix_start: since_epoch.as_secs() as i64,
    });
    let (connections, rate, json) = (args.connections, args.rate, args.json);
    let params = Arc::new(Params {
        kind: args.kind,
        secret: args.secret.clone(),
        auth: format!("Bearer {}", args.token),
        business: args.business.clone(),
        events_per_webhook: args.events_per_webhook,
        recipients: args.recipients,
    });
    let wall = Instant::now();
    let workers: Vec<_> = (0..connections.min(total as usize))
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                url.clone(),
                shared.clone(),
                params.clone(),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => {
                all.ok += t.ok;
                all.latencies_us.extend(t.latencies_us);
                for (k, v) in t.by_status {
                    *all.by_status.entry(k).or_default() += v;
                }
            }
            Err(e) => *all.by_status.entry(format!("worker: {e}")).or_default() += 1,
        }
    }
    // From the first scheduled request to the last answer.
    let elapsed = wall.elapsed().saturating_sub(Duration::from_millis(50));
    report(&all, total, elapsed, &params, rate, json);
    Ok(())
}

struct Params {
    kind: Kind,
    secret: String,
    auth: String,
    business: String,
    events_per_webhook: usize,
    recipients: u64,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn report(t: &Tally, total: u64, elapsed: Duration, p: &Params, target: f64, json: bool) {
    let mut lat = t.latencies_us.clone();
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let sent = lat.len() as u64;
    let errors: u64 = t.by_status.values().sum();
    let per = match p.kind {
        Kind::Webhook => p.events_per_webhook as u64,
        Kind::Quote => 1,
    };
    let achieved = sent as f64 / secs;
    let events = (t.ok * per) as f64 / secs;
    let [p50, p90, p99, p999] = [0.5, 0.9, 0.99, 0.999].map(|q| percentile(&lat, q));
    let max = lat.last().copied().unwrap_or(0) as f64 / 1000.0;
    let kind = match p.kind {
        Kind::Webhook => "webhook",
        Kind::Quote => "quote",
    };
    if json {
        let v = serde_json::json!({
            "kind": kind,
            "target_rate": target,
            "planned": total,
            "sent": sent,
            "ok": t.ok,
            "errors": errors,
            "errors_by_status": t.by_status,
            "seconds": secs,
            "achieved_rate": achieved,
            "events_per_request": per,
            "events_acknowledged_per_s": events,
            "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "p99.9": p999, "max": max},
        });
        println!("{v}");
        return;
    }
    println!("kind                     {kind}");
    println!("target rate              {target:.0} req/s");
    println!("requests sent            {sent} (planned {total})");
    println!("ok (2xx)                 {}", t.ok);
    println!("errors                   {errors}");
    for (k, v) in &t.by_status {
        println!("  {k:<22} {v}");
    }
    println!("seconds                  {secs:.2}");
    println!("achieved rate            {achieved:.0} req/s");
    if p.kind == Kind::Webhook {
        println!("events acknowledged/s    {events:.0} ({per} per webhook)");
    }
    println!("latency from schedule (ms)");
    println!("  p50   {p50:>10.2}");
    println!("  p90   {p90:>10.2}");
    println!("  p99   {p99:>10.2}");
    println!("  p99.9 {p999:>10.2}");
    println!("  max   {max:>10.2}");
}

async fn worker(
    client: reqwest::Client,
    url: Arc<str>,
    shared: Arc<Shared>,
    params: Arc<Params>,
) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(1024),
        ..Tally::default()
    };
    let mut body = String::with_capacity(1024 * params.events_per_webhook);
    loop {
        let i = shared.next.fetch_add(1, Relaxed);
        if i >= shared.total {
            break;
        }
        let scheduled = shared.start + Duration::from_secs_f64(i as f64 / shared.rate);
        tokio::time::sleep_until(scheduled).await;
        body.clear();
        let request = match params.kind {
            Kind::Webhook => {
                webhook_body(&mut body, &params, &shared, i);
                let signature =
                    tarifa_service::signature::sign(params.secret.as_bytes(), body.as_bytes());
                client
                    .post(&*url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", signature)
                    .body(body.clone())
            }
            Kind::Quote => {
                quote_body(&mut body, &params, i);
                client
                    .post(&*url)
                    .header("content-type", "application/json")
                    .header("authorization", &params.auth)
                    .body(body.clone())
            }
        };
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                // Read the whole answer so the connection can be reused.
                let read = response.bytes().await;
                match read {
                    Ok(_) if status.is_success() => None,
                    Ok(_) => Some(status.as_u16().to_string()),
                    Err(e) => Some(error_class(&e)),
                }
            }
            Err(e) => Some(error_class(&e)),
        };
        let took = tokio::time::Instant::now().saturating_duration_since(scheduled);
        tally.latencies_us.push(took.as_micros() as u64);
        match outcome {
            None => tally.ok += 1,
            Some(class) => *tally.by_status.entry(class).or_default() += 1,
        }
    }
    tally
}

fn error_class(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

/// A Meta status webhook (spec §9.2 (a)) with `events_per_webhook` statuses. Event `j` (over the
/// whole run) is about message `j / 2`: first `sent`, then `delivered`, so every wamid is unique
/// to the run and each status is new.
fn webhook_body(out: &mut String, p: &Params, s: &Shared, i: u64) {
    let k = p.events_per_webhook as u64;
    let at = s.unix_start + (i as f64 / s.rate) as i64;
    let _ = write!(
        out,
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"34910000000","phone_number_id":"106540352242922"}},"statuses":["#,
        p.business
    );
    for e in 0..k {
        let j = i * k + e;
        let message = j / 2;
        let status = if j.is_multiple_of(2) {
            "sent"
        } else {
            "delivered"
        };
        let recipient = 34_600_000_000u64 + (message * 7919) % p.recipients;
        if e > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"id":"wamid.HBgLMzQ2MDAw{:016x}{:012x}AA==","status":"{status}","timestamp":"{at}","recipient_id":"{recipient}","conversation":{{"id":"{:032x}","expiration_timestamp":"{}","origin":{{"type":"marketing"}}}},"pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}}}"#,
            s.nonce,
            message,
            (s.nonce as u128) << 64 | message as u128,
            at + 86_400,
        );
    }
    out.push_str(r#"]},"field":"messages"}]}]}"#);
}

fn quote_body(out: &mut String, p: &Params, i: u64) {
    let user = (i * 7919) % p.recipients;
    let _ = write!(
        out,
        r#"{{"business":"{}","phone":"34910000000","user":"{}","template":{{"name":"promo","category":"marketing"}}}}"#,
        p.business,
        34_600_000_000u64 + user
    );
}
