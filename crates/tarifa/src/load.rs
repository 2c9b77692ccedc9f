//! `tarifa load`: an open-loop load generator for `tarifa serve`.
//!
//! Request `i` is scheduled at `start + i / rate`, whatever happened to the earlier ones, and its
//! latency is measured from that scheduled instant: when the server (or the generator) falls
//! behind, the wait counts, so there is no coordinated omission. `connections` workers, each with
//! one HTTP/1.1 keep-alive connection, take the next request number from a shared counter, sleep
//! until its time if it is still ahead, send it and record the latency.
//!
//! The generator shares the machine with the server, so it is kept cheap: every request is built
//! and signed before the clock starts, and sent as raw bytes on a plain socket (no HTTP client
//! library, no per-request allocation); answers are read with `httparse`.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    /// Generator threads (tokio workers); one thread sends 20,000 requests/s.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also print, for each second of the schedule, how many requests it held and their p50,
    /// p99 and maximum latency: shows whether a tail is spread out or comes from a few stalls.
    #[arg(long)]
    timeline: bool,
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    /// (request number, latency in µs).
    latencies_us: Vec<(u64, u64)>,
    ok: u64,
    by_status: BTreeMap<String, u64>,
}

struct Shared {
    next: AtomicU64,
    total: u64,
    rate: f64,
    start: tokio::time::Instant,
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
    let target = Target::parse(&args.url)?;
    let total = (args.rate * args.duration).round().max(1.0) as u64;
    let params = Params::new(args);
    // Every request is built (and signed) before the clock starts, so the generator's own CPU
    // during the run is a write and a read per request.
    let requests = Arc::new(Requests::build(&target, &params, total));
    let connections = open_connections(&target, args.connections.min(total as usize)).await;
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        total,
        rate: args.rate,
        start: tokio::time::Instant::now() + Duration::from_millis(50),
    });
    let wall = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(worker(
                target.address.clone(),
                connection,
                shared.clone(),
                requests.clone(),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => all.add(t),
            Err(e) => *all.by_status.entry(format!("worker: {e}")).or_default() += 1,
        }
    }
    // From the first scheduled request to the last answer.
    let elapsed = wall.elapsed().saturating_sub(Duration::from_millis(50));
    let seconds = args.timeline.then(|| timeline(&all, args.rate));
    let summary = Summary::new(&all, total, elapsed, &params, args.rate);
    if args.json {
        summary.print_json(seconds.as_deref());
    } else {
        summary.print_table(seconds.as_deref());
    }
    Ok(())
}

/// Every connection is opened before the clock starts: the run measures requests, not
/// connection set-up (a connection that fails here is retried by its worker, on the clock).
async fn open_connections(target: &Target, count: usize) -> Vec<Option<TcpStream>> {
    let connecting: Vec<_> = (0..count)
        .map(|_| tokio::spawn(connect(target.address.clone())))
        .collect();
    let mut connections = Vec::with_capacity(connecting.len());
    for c in connecting {
        connections.push(c.await.ok().and_then(Result::ok));
    }
    connections
}

impl Tally {
    /// Adds what another worker saw.
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
    }
}

/// Where the requests go: `http://host:port[/prefix]` (plain HTTP/1.1; no TLS).
struct Target {
    address: String,
    host: String,
    path_prefix: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!(
                "--url must start with http:// (the load generator speaks plain HTTP/1.1): {url}"
            );
        };
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            bail!("--url has no host: {url}");
        }
        let address = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(Target {
            address,
            host: host.to_string(),
            path_prefix: path.to_string(),
        })
    }
}

/// All the run's requests, as raw HTTP/1.1 bytes in one buffer: request `i` is
/// `bytes[ends[i - 1]..ends[i]]`.
struct Requests {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Requests {
    fn build(target: &Target, p: &Params, total: u64) -> Requests {
        let (path, auth_header) = match p.kind {
            Kind::Webhook => ("/webhooks/meta", String::new()),
            Kind::Quote => ("/v1/quote", format!("authorization: {}\r\n", p.auth)),
        };
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(total as usize);
        let mut body = String::with_capacity(1024 * p.events_per_webhook);
        for i in 0..total {
            body.clear();
            let signature = match p.kind {
                Kind::Webhook => {
                    webhook_body(&mut body, p, i);
                    let sig =
                        tarifa_service::api::signature::sign(p.secret.as_bytes(), body.as_bytes());
                    format!("x-hub-signature-256: {sig}\r\n")
                }
                Kind::Quote => {
                    quote_body(&mut body, p, i);
                    String::new()
                }
            };
            let head = format!(
                "POST {}{path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{auth_header}{signature}content-length: {}\r\n\r\n",
                target.path_prefix,
                target.host,
                body.len()
            );
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(body.as_bytes());
            ends.push(bytes.len());
        }
        Requests { bytes, ends }
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

struct Params {
    kind: Kind,
    secret: String,
    auth: String,
    business: String,
    events_per_webhook: usize,
    recipients: u64,
    rate: f64,
    nonce: u64,
    unix_start: i64,
}

impl Params {
    fn new(args: &LoadArgs) -> Params {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Params {
            kind: args.kind,
            secret: args.secret.clone(),
            auth: format!("Bearer {}", args.token),
            business: args.business.clone(),
            events_per_webhook: args.events_per_webhook,
            recipients: args.recipients,
            rate: args.rate,
            nonce: since_epoch.as_nanos() as u64,
            unix_start: since_epoch.as_secs() as i64,
        }
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// The figures of a run.
struct Summary<'a> {
    kind: &'static str,
    /// `--rate`.
    target: f64,
    planned: u64,
    sent: u64,
    ok: u64,
    errors: u64,
    by_status: &'a BTreeMap<String, u64>,
    secs: f64,
    achieved: f64,
    /// Events per request.
    per: u64,
    /// Events acknowledged per second.
    events: f64,
    /// p50, p90, p99, p99.9 and maximum latency (ms).
    latency_ms: [f64; 5],
}

impl<'a> Summary<'a> {
    fn new(t: &'a Tally, planned: u64, elapsed: Duration, p: &Params, target: f64) -> Summary<'a> {
        let mut lat: Vec<u64> = t.latencies_us.iter().map(|&(_, l)| l).collect();
        lat.sort_unstable();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let sent = lat.len() as u64;
        let (kind, per) = match p.kind {
            Kind::Webhook => ("webhook", p.events_per_webhook as u64),
            Kind::Quote => ("quote", 1),
        };
        let [p50, p90, p99, p999] = [0.5, 0.9, 0.99, 0.999].map(|q| percentile(&lat, q));
        let max = lat.last().copied().unwrap_or(0) as f64 / 1000.0;
        Summary {
            kind,
            target,
            planned,
            sent,
            ok: t.ok,
            errors: t.by_status.values().sum(),
            by_status: &t.by_status,
            secs,
            achieved: sent as f64 / secs,
            per,
            events: (t.ok * per) as f64 / secs,
            latency_ms: [p50, p90, p99, p999, max],
        }
    }

    fn print_json(&self, seconds: Option<&[Second]>) {
        let [p50, p90, p99, p999, max] = self.latency_ms;
        let mut v = serde_json::json!({
            "kind": self.kind,
            "target_rate": self.target,
            "planned": self.planned,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_status": self.by_status,
            "seconds": self.secs,
            "achieved_rate": self.achieved,
            "events_per_request": self.per,
            "events_acknowledged_per_s": self.events,
            "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "p99.9": p999, "max": max},
        });
        if let Some(seconds) = seconds {
            v["timeline"] = serde_json::json!(seconds);
        }
        println!("{v}");
    }

    fn print_table(&self, seconds: Option<&[Second]>) {
        let Summary {
            kind,
            target,
            planned,
            sent,
            errors,
            secs,
            achieved,
            per,
            events,
            ..
        } = *self;
        println!("kind                     {kind}");
        println!("target rate              {target:.0} req/s");
        println!("requests sent            {sent} (planned {planned})");
        println!("ok (2xx)                 {}", self.ok);
        println!("errors                   {errors}");
        for (k, v) in self.by_status {
            println!("  {k:<22} {v}");
        }
        println!("seconds                  {secs:.2}");
        println!("achieved rate            {achieved:.0} req/s");
        if kind == "webhook" {
            println!("events acknowledged/s    {events:.0} ({per} per webhook)");
        }
        let [p50, p90, p99, p999, max] = self.latency_ms;
        println!("latency from schedule (ms)");
        println!("  p50   {p50:>10.2}");
        println!("  p90   {p90:>10.2}");
        println!("  p99   {p99:>10.2}");
        println!("  p99.9 {p999:>10.2}");
        println!("  max   {max:>10.2}");
        if let Some(seconds) = seconds {
            print_timeline(seconds);
        }
    }
}

fn print_timeline(seconds: &[Second]) {
    println!("second  requests     p50 ms     p99 ms     max ms");
    for s in seconds {
        println!(
            "{:>6}  {:>8}  {:>9.2}  {:>9.2}  {:>9.2}",
            s.second, s.requests, s.p50_ms, s.p99_ms, s.max_ms
        );
    }
}

/// The requests due in one second of the schedule and their latencies (ms).
#[derive(serde::Serialize)]
struct Second {
    second: u64,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Latency per second of the schedule (the second request `i` was due in).
fn timeline(t: &Tally, rate: f64) -> Vec<Second> {
    let mut by_second: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(i, l) in &t.latencies_us {
        by_second
            .entry((i as f64 / rate) as u64)
            .or_default()
            .push(l);
    }
    by_second
        .into_iter()
        .map(|(second, mut lat)| {
            lat.sort_unstable();
            Second {
                second,
                requests: lat.len(),
                p50_ms: percentile(&lat, 0.5),
                p99_ms: percentile(&lat, 0.99),
                max_ms: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
            }
        })
        .collect()
}

async fn worker(
    address: String,
    mut connection: Option<TcpStream>,
    shared: Arc<Shared>,
    requests: Arc<Requests>,
) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(1024),
        ..Tally::default()
    };
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let i = shared.next.fetch_add(1, Relaxed);
        if i >= shared.total {
            break;
        }
        let scheduled = shared.start + Duration::from_secs_f64(i as f64 / shared.rate);
        if connection.is_none() {
            connection = connect(address.clone()).await.ok();
        }
        tokio::time::sleep_until(scheduled).await;
        let outcome = match connection.as_mut() {
            None => Err("connect".to_string()),
            Some(stream) => exchange(stream, requests.get(i as usize), &mut buffer).await,
        };
        let took = tokio::time::Instant::now().saturating_duration_since(scheduled);
        tally.latencies_us.push((i, took.as_micros() as u64));
        match outcome {
            Ok(Answer { status, keep_alive }) => {
                if (200..300).contains(&status) {
                    tally.ok += 1;
                } else {
                    *tally.by_status.entry(status.to_string()).or_default() += 1;
                }
                if !keep_alive {
                    connection = None;
                }
            }
            Err(class) => {
                *tally.by_status.entry(class).or_default() += 1;
                connection = None;
            }
        }
    }
    tally
}

async fn connect(address: String) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What the server answered.
struct Answer {
    status: u16,
    keep_alive: bool,
}

/// Sends one request and reads its whole answer (so the connection can carry the next one).
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<Answer, String> {
    let io = |e: std::io::Error| format!("transport: {}", e.kind());
    stream.write_all(request).await.map_err(io)?;
    buffer.clear();
    loop {
        if let Some((answer, length)) = parse_answer(buffer)? {
            if buffer.len() >= length {
                return Ok(answer);
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read_buf(buffer))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(io)?;
        if read == 0 {
            return Err("transport: closed".to_string());
        }
    }
}

/// The answer and its total length (head plus `content-length` body) once the head is complete.
fn parse_answer(buffer: &[u8]) -> Result<Option<(Answer, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buffer) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad answer: {e}")),
    };
    let mut body = 0usize;
    let mut keep_alive = true;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("bad answer: content-length")?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("bad answer: chunked bodies are not read".to_string());
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep_alive = !h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let status = response.code.unwrap_or(0);
    Ok(Some((Answer { status, keep_alive }, head + body)))
}

/// A Meta status webhook (spec §9.2 (a)) with `events_per_webhook` statuses. Event `j` (over the
/// whole run) is about message `j / 2`: first `sent`, then `delivered`, so every wamid is unique
/// to the run and each status is new.
fn webhook_body(out: &mut String, p: &Params, i: u64) {
    let k = p.events_per_webhook as u64;
    let at = p.unix_start + (i as f64 / p.rate) as i64;
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
        let random = crate::gen::mix64(p.nonce ^ message);
        out.push_str(r#"{"id":""#);
        meta_wamid(out, recipient, random);
        let _ = write!(
            out,
            r#"","status":"{status}","timestamp":"{at}","recipient_id":"{recipient}","conversation":{{"id":"{:032x}","expiration_timestamp":"{}","origin":{{"type":"marketing"}}}},"pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}}}"#,
            u128::from(crate::gen::mix64(random)) << 64 | u128::from(random),
            at + 86_400,
        );
    }
    out.push_str(r#"]},"field":"messages"}]}]}"#);
}

/// A wamid shaped like Meta's (spec §9): `wamid.` and the base64 of a small record holding the
/// recipient's number, then a random 18-digit hex id. Such ids sort by recipient, then at
/// random, so the server's indexes on them take inserts all over, as under real traffic (a
/// sequential id would only ever append).
fn meta_wamid(out: &mut String, recipient: u64, random: u64) {
    use base64::Engine as _;
    let number = recipient.to_string();
    let mut record = vec![0x1c, 0x18, number.len() as u8];
    record.extend_from_slice(number.as_bytes());
    record.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
    record.extend_from_slice(format!("{random:016X}{:02X}", random >> 56 ^ 0x5a).as_bytes());
    record.push(0x00);
    out.push_str("wamid.");
    base64::engine::general_purpose::STANDARD.encode_string(&record, out);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wamids_have_the_shape_of_metas() {
        // A real wamid from spec §9 for recipient 16503879439:
        // wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA
        let mut ours = String::new();
        meta_wamid(&mut ours, 16_503_879_439, 0x4AD6_2084_F2FA_1632);
        assert!(
            ours.starts_with("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"),
            "{ours}"
        );
        assert_eq!(
            ours.len(),
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA".len()
        );
        let mut other = String::new();
        meta_wamid(&mut other, 16_503_879_439, 0x4AD6_2084_F2FA_1633);
        assert_ne!(ours, other);
    }
}
