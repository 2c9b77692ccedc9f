//! The generation state: the random source, the queue of events in flight, the counters, and the
//! draws every kind of session shares (when the next session starts, which user, which template,
//! how long people take to answer). Sessions are generated just in time: only when the earliest
//! queued event is later than the next session's start.

use super::catalog::{templates_of, TemplateId};
use super::clock::{Secs, DAY, HOUR, MINUTE};
use super::event::{Ev, Kind, F_DUP, F_HOOK};
use super::queue::Queue;
use super::random::{mix64, unit, Rng};
use super::world::World;
use tarifa_core::category::TemplateCategory;

/// Share of sessions whose user is drawn among the heavy users (low indices).
const HEAVY_USER_SHARE: f64 = 0.3;

/// How long a user takes to answer: cumulative share, then the range of seconds.
const USER_REPLY_DELAYS: &[(f64, (Secs, Secs))] = &[
    (0.60, (10, 10 * MINUTE)),
    (0.85, (10 * MINUTE, 3 * HOUR)),
    (0.95, (3 * HOUR, DAY - 1)),
    (1.0, (DAY, 2 * DAY)),
];

/// How long a business (a person, not Meta Business Agent) takes to answer.
const BUSINESS_REPLY_DELAYS: &[(f64, (Secs, Secs))] = &[
    (0.55, (5, 5 * MINUTE)),
    (0.80, (5 * MINUTE, 2 * HOUR)),
    (0.96, (2 * HOUR, 23 * HOUR)),
    (1.0, (DAY, 3 * DAY)),
];

pub(super) struct Generator<'w> {
    pub w: &'w World,
    pub rng: Rng,
    queue: Queue,
    /// Events to generate in all (`--events`).
    target: u64,
    /// Start of the next session.
    next_start: Secs,
    /// Events queued so far, the sequence that orders events of the same second.
    seq: u64,
    /// Messages so far: the last message number.
    msg: u64,
    /// Events generated so far (retries included).
    pub generated: u64,
    pub sessions: u64,
}

impl<'w> Generator<'w> {
    pub fn new(w: &'w World, seed: u64, target: u64) -> Generator<'w> {
        let mut generator = Generator {
            w,
            rng: Rng::new(seed),
            queue: Queue::new(),
            target,
            next_start: 0,
            seq: 0,
            msg: 0,
            generated: 0,
            sessions: 0,
        };
        generator.next_start = generator.next_start_after(0);
        generator
    }

    /// The next event in time order, generating sessions until no later one can precede it.
    pub fn next_event(&mut self) -> Ev {
        loop {
            let due = self
                .queue
                .peek()
                .is_some_and(|top| self.generated >= self.target || top.time() <= self.next_start);
            if due {
                if let Some(ev) = self.queue.pop() {
                    return ev;
                }
            }
            self.session(self.next_start);
            self.next_start = self.next_start_after(self.next_start);
        }
    }

    /// Start of the next session: progress through the log (events generated / target),
    /// jittered by about one session, warped to calendar time; never before `prev`.
    fn next_start_after(&mut self, prev: Secs) -> Secs {
        let avg = if self.sessions == 0 {
            8.0
        } else {
            self.generated as f64 / self.sessions as f64
        };
        let v = self.generated as f64 + (self.rng.f64() - 0.5) * avg;
        let p = v / self.target.max(1) as f64;
        self.w.warp.at(p).min(self.w.clock.end - 1).max(prev)
    }

    /// Queues `ev` (unless it falls after the log), written as a webhook and retried as the
    /// shares of `--webhook-fraction` and `--duplicates` say.
    pub fn push(&mut self, mut ev: Ev) {
        if ev.at >= self.w.clock.end {
            return;
        }
        let keys = &self.w.keys;
        let salt = ev.msg.wrapping_mul(8) | ev.kind as u64;
        if ev.kind != Kind::Outbound && unit(mix64(salt ^ keys.hook)) < self.w.webhook_fraction {
            ev.flags |= F_HOOK;
        }
        self.enqueue(ev, ev.at);
        if self.w.duplicates > 0.0 {
            let h = mix64(salt ^ keys.dup);
            if unit(h) < self.w.duplicates {
                // A retry: same bytes, delivered 1 s … 10 min later.
                let delay = 1 + (h & 0xffff) as Secs % 600;
                let mut dup = ev;
                dup.flags |= F_DUP;
                self.enqueue(dup, ev.at + delay);
            }
        }
    }

    fn enqueue(&mut self, mut ev: Ev, at: Secs) {
        ev.schedule(at, self.seq);
        self.seq += 1;
        self.generated += 1;
        self.queue.push(ev);
    }

    pub fn pick_user(&mut self) -> u32 {
        let n = self.w.users.number.len() as u64;
        if self.rng.chance(HEAVY_USER_SHARE) {
            // Heavy users: low indices (density ∝ 1/√i).
            let u = self.rng.f64();
            ((u * u) * n as f64) as u32
        } else {
            self.rng.below(n) as u32
        }
    }

    /// A template of `category`, the first ones more often.
    pub fn pick_template(&mut self, category: TemplateCategory) -> TemplateId {
        let (first, count) = templates_of(category);
        let n = count as u64;
        let i = self.rng.below(n).min(self.rng.below(n));
        (first as u64 + i + 1) as TemplateId
    }

    pub fn user_reply_delay(&mut self) -> Secs {
        self.rng.banded(USER_REPLY_DELAYS)
    }

    pub fn business_reply_delay(&mut self) -> Secs {
        self.rng.banded(BUSINESS_REPLY_DELAYS)
    }

    /// A new message number.
    pub fn next_msg(&mut self) -> u64 {
        self.msg += 1;
        self.msg
    }
}
