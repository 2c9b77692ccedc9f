//! Prometheus metrics, kept as atomics and written in the text exposition format by `/metrics`
//! (no registry crate: a handful of counters and three latency histograms).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket upper bounds in seconds.
const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(BOUNDS) {
            if s <= bound {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn write(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, bound) in self.buckets.iter().zip(BOUNDS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", b.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Relaxed) as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub webhooks_accepted: AtomicU64,
    pub webhooks_bad_signature: AtomicU64,
    pub webhooks_dead_lettered: AtomicU64,
    pub events_stored: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_rejected: AtomicU64,
    pub quotes: AtomicU64,
    pub group_commits: AtomicU64,
    /// Look-ups in the store of event keys that the writer's filter may contain, and the keys
    /// they asked for (a duplicate, or a false positive of the filter).
    pub key_lookups: AtomicU64,
    pub key_lookup_keys: AtomicU64,
    /// Money operations the book expected to apply but the ledger refused (nothing applied).
    pub ledger_anomalies: AtomicU64,
    pub group_commit_seconds: Histogram,
    /// The transaction alone (BEGIN … COMMIT), without applying the group.
    pub transaction_seconds: Histogram,
    /// Time the writer spends checking duplicates and applying commands to the book.
    pub apply_seconds: Histogram,
    pub webhook_ack_seconds: Histogram,
    pub quote_seconds: Histogram,
    /// Keys in the writer's filter of stored keys, and whether it holds every stored key yet
    /// (it is filled in the background after start).
    pub seen_keys: AtomicU64,
    pub seen_keys_complete: AtomicU64,
}

impl Metrics {
    pub fn record_group(&self, _events: u64, took: Duration) {
        self.group_commits.fetch_add(1, Relaxed);
        self.group_commit_seconds.observe(took);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for v in &VALUES {
            write_value(&mut out, v.kind, v.name, v.help, (v.of)(self));
        }
        for t in &TIMINGS {
            (t.of)(self).write(t.name, t.help, &mut out);
        }
        out
    }
}

/// A counter or gauge of [`Metrics`]: how it is exposed, and which field holds it.
struct Value {
    kind: &'static str,
    name: &'static str,
    help: &'static str,
    of: fn(&Metrics) -> &AtomicU64,
}

/// A latency histogram of [`Metrics`].
struct Timing {
    name: &'static str,
    help: &'static str,
    of: fn(&Metrics) -> &Histogram,
}

const fn counter(name: &'static str, help: &'static str, of: fn(&Metrics) -> &AtomicU64) -> Value {
    Value {
        kind: "counter",
        name,
        help,
        of,
    }
}

const fn gauge(name: &'static str, help: &'static str, of: fn(&Metrics) -> &AtomicU64) -> Value {
    Value {
        kind: "gauge",
        name,
        help,
        of,
    }
}

/// The counters, then the gauges, in the order `/metrics` writes them.
const VALUES: [Value; 13] = [
    counter(
        "tarifa_webhooks_accepted_total",
        "Webhook bodies acknowledged after they were stored.",
        |m| &m.webhooks_accepted,
    ),
    counter(
        "tarifa_webhooks_bad_signature_total",
        "Webhook bodies refused for a missing or wrong X-Hub-Signature-256.",
        |m| &m.webhooks_bad_signature,
    ),
    counter(
        "tarifa_webhooks_dead_lettered_total",
        "Signed webhook bodies that could not be read, kept in dead_letters.",
        |m| &m.webhooks_dead_lettered,
    ),
    counter(
        "tarifa_events_stored_total",
        "Events stored (webhooks and the events API).",
        |m| &m.events_stored,
    ),
    counter(
        "tarifa_events_duplicate_total",
        "Events already stored (retries).",
        |m| &m.events_duplicate,
    ),
    counter(
        "tarifa_events_rejected_total",
        "Events rejected (invalid, unknown business, 402).",
        |m| &m.events_rejected,
    ),
    counter("tarifa_quotes_total", "Quotes answered.", |m| &m.quotes),
    counter(
        "tarifa_group_commits_total",
        "Database transactions of the writer.",
        |m| &m.group_commits,
    ),
    counter(
        "tarifa_key_lookups_total",
        "Store look-ups of event keys the filter of stored keys may contain (on the writer's path).",
        |m| &m.key_lookups,
    ),
    counter(
        "tarifa_key_lookup_keys_total",
        "Event keys looked up in the store (duplicates, and the filter's false positives).",
        |m| &m.key_lookup_keys,
    ),
    counter(
        "tarifa_ledger_anomalies_total",
        "Money operations the book expected to apply but the ledger refused (each logged).",
        |m| &m.ledger_anomalies,
    ),
    gauge(
        "tarifa_seen_keys",
        "Keys added to the writer's filter of stored event keys since start.",
        |m| &m.seen_keys,
    ),
    gauge(
        "tarifa_seen_keys_complete",
        "1 once the filter holds every stored key (until then duplicates are looked up in the database).",
        |m| &m.seen_keys_complete,
    ),
];

const TIMINGS: [Timing; 5] = [
    Timing {
        name: "tarifa_group_commit_seconds",
        help: "Time from a group's first command to its commit (applying overlaps the previous commit).",
        of: |m| &m.group_commit_seconds,
    },
    Timing {
        name: "tarifa_transaction_seconds",
        help: "Time of one group's database transaction (BEGIN to COMMIT).",
        of: |m| &m.transaction_seconds,
    },
    Timing {
        name: "tarifa_apply_seconds",
        help: "Time the writer spends on one batch of commands: duplicate check and book.",
        of: |m| &m.apply_seconds,
    },
    Timing {
        name: "tarifa_webhook_ack_seconds",
        help: "Time from a webhook's arrival to its acknowledgement.",
        of: |m| &m.webhook_ack_seconds,
    },
    Timing {
        name: "tarifa_quote_seconds",
        help: "Time to answer a quote.",
        of: |m| &m.quote_seconds,
    },
];

/// One counter or gauge in the text exposition format.
pub(crate) fn write_value(out: &mut String, kind: &str, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
        value.load(Relaxed)
    );
}

/// The store's own metrics (SQLite's background checkpoints), in the text exposition format.
pub fn render_store(store: &crate::storage::Store) -> String {
    let mut out = String::new();
    if let Some((runs, frames)) = store.wal_checkpoints() {
        write_value(
            &mut out,
            "counter",
            "tarifa_sqlite_checkpoints_total",
            "Background checkpoints of SQLite's write-ahead log.",
            &AtomicU64::new(runs),
        );
        write_value(
            &mut out,
            "gauge",
            "tarifa_sqlite_wal_frames",
            "Frames (pages) in SQLite's write-ahead log at the last background checkpoint.",
            &AtomicU64::new(frames),
        );
    }
    out
}
