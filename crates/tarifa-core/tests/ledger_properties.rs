//! Property tests of the wallet ledger (`tarifa_core::ledger`), after TigerBeetle's simulator: a
//! generated sequence of operations is run against the ledger, the state is kept after every
//! step, and each property below checks one invariant of `shared/docs/ENGINEERING.md` §4 (and of
//! the wallet issue) on every step.
//!
//! The world: two currencies (USD, EUR), each with a funding account, a revenue account and four
//! wallets: floor 0 without a low-balance threshold, floor 0 with a threshold of 10, a credit line
//! (floor −25, threshold 0) and a small credit line (floor −2, threshold 5); plus a USD wallet
//! opened only when the sequence says so (operations on it before fail). Operations: top-ups,
//! wallet-to-wallet transfers, holds of random amounts and lifetimes (some with a timeout that
//! has already passed), captures (full, partial, above the hold, zero), releases, refunds of
//! captures, chargebacks of top-ups, reversals of any transfer, expiries at random times (some
//! earlier than before), holds across currencies, conflicting account openings, exact retries
//! of earlier operations and conflicting retries (same id, other content).
//!
//! On replay: a request refused for a transient reason (insufficient funds, an account or hold
//! not there yet) left no trace, so sending it again is a new attempt that may now succeed (a
//! hold refused with 402 goes through after a top-up). Replaying a prefix therefore replays every
//! operation except those, and checks that nothing changes.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use std::collections::{BTreeMap, BTreeSet};
use tarifa_core::ledger::{
    Account, AccountId, AccountKind, Amount, Applied, Counters, Ledger, LedgerError, NewAccount,
    Request, Resolution, Status, Transfer, TransferId, TransferKind, WalletPolicy,
};
use tarifa_core::time::Instant;

const CASES: u32 = 256;
const CURRENCIES: [&str; 2] = ["USD", "EUR"];
/// (name, floor, low-balance threshold), in whole units.
const WALLETS: [(&str, i64, Option<i64>); 4] = [
    ("a", 0, None),
    ("b", 0, Some(10)),
    ("credit", -25, Some(0)),
    ("d", -2, Some(5)),
];
const LATE: &str = "wallet:USD:late";

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

fn wallet_account(currency: &str, name: &str, floor: i64, threshold: Option<i64>) -> NewAccount {
    NewAccount {
        id: format!("wallet:{currency}:{name}").into(),
        currency: currency.into(),
        kind: AccountKind::Wallet(WalletPolicy {
            floor: Amount::from_units(floor),
            low_balance_threshold: threshold.map(Amount::from_units),
        }),
    }
}

fn initial_accounts() -> Vec<NewAccount> {
    let mut accounts = Vec::new();
    for currency in CURRENCIES {
        for (prefix, kind) in [
            ("funding", AccountKind::Funding),
            ("revenue", AccountKind::Revenue),
        ] {
            accounts.push(NewAccount {
                id: format!("{prefix}:{currency}").into(),
                currency: currency.into(),
                kind,
            });
        }
        for (name, floor, threshold) in WALLETS {
            accounts.push(wallet_account(currency, name, floor, threshold));
        }
    }
    accounts
}

fn late_account() -> NewAccount {
    wallet_account("USD", "late", 0, Some(1))
}

/// Every wallet an operation may pick, with its currency.
fn wallets() -> Vec<(AccountId, &'static str)> {
    let mut all: Vec<_> = CURRENCIES
        .iter()
        .flat_map(|&c| {
            WALLETS
                .iter()
                .map(move |w| (format!("wallet:{c}:{}", w.0).into(), c))
        })
        .collect();
    all.push((LATE.into(), "USD"));
    all
}

// ---------------------------------------------------------------------------------------------
// Generated operations, made concrete against the ids issued so far
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum CaptureMode {
    Full,
    Partial(u8),
    Over(i64),
    Zero,
}

#[derive(Clone, Debug)]
enum Gen {
    TopUp {
        wallet: Index,
        micros: i64,
    },
    Move {
        from: Index,
        to: Index,
        micros: i64,
    },
    Hold {
        wallet: Index,
        micros: i64,
        lifetime: i64,
    },
    StaleHold {
        wallet: Index,
        micros: i64,
    },
    CrossCurrencyHold {
        wallet: Index,
        micros: i64,
    },
    /// `fresh`: a hold still pending, else any hold issued (refused, resolved or pending).
    Capture {
        hold: Index,
        fresh: bool,
        mode: CaptureMode,
    },
    Release {
        hold: Index,
        fresh: bool,
    },
    /// A capture (of 1 micro-unit) or a release of any transfer issued: most are not pending.
    ResolveAny {
        transfer: Index,
        capture: bool,
    },
    Refund {
        capture: Index,
        percent: u8,
    },
    Chargeback {
        top_up: Index,
        percent: u8,
    },
    ReverseAny {
        transfer: Index,
        percent: u8,
    },
    Expire {
        step: i64,
        backwards: bool,
    },
    Retry {
        op: Index,
    },
    Conflict {
        op: Index,
    },
    OpenLate,
    ConflictingAccount {
        wallet: Index,
    },
}

fn gen_op() -> impl Strategy<Value = Gen> {
    let idx = any::<Index>;
    prop_oneof![
        8 => (idx(), 1_000_000i64..=40_000_000).prop_map(|(wallet, micros)| Gen::TopUp { wallet, micros }),
        1 => (idx(), idx(), 1i64..=10_000_000).prop_map(|(from, to, micros)| Gen::Move { from, to, micros }),
        10 => (idx(), 1i64..=15_000_000, 1i64..=400)
            .prop_map(|(wallet, micros, lifetime)| Gen::Hold { wallet, micros, lifetime }),
        1 => (idx(), 1i64..=5_000_000).prop_map(|(wallet, micros)| Gen::StaleHold { wallet, micros }),
        1 => (idx(), 1i64..=5_000_000).prop_map(|(wallet, micros)| Gen::CrossCurrencyHold { wallet, micros }),
        7 => (idx(), any::<bool>(), prop_oneof![
                3 => Just(CaptureMode::Full),
                3 => (1u8..=99).prop_map(CaptureMode::Partial),
                1 => (1i64..=1_000_000).prop_map(CaptureMode::Over),
                1 => Just(CaptureMode::Zero),
            ]).prop_map(|(hold, fresh, mode)| Gen::Capture { hold, fresh, mode }),
        4 => (idx(), any::<bool>()).prop_map(|(hold, fresh)| Gen::Release { hold, fresh }),
        1 => (idx(), any::<bool>()).prop_map(|(transfer, capture)| Gen::ResolveAny { transfer, capture }),
        3 => (idx(), 1u8..=120).prop_map(|(capture, percent)| Gen::Refund { capture, percent }),
        1 => (idx(), 1u8..=120).prop_map(|(top_up, percent)| Gen::Chargeback { top_up, percent }),
        1 => (idx(), 1u8..=100).prop_map(|(transfer, percent)| Gen::ReverseAny { transfer, percent }),
        3 => (0i64..=300, prop::bool::weighted(0.2))
            .prop_map(|(step, backwards)| Gen::Expire { step, backwards }),
        4 => idx().prop_map(|op| Gen::Retry { op }),
        2 => idx().prop_map(|op| Gen::Conflict { op }),
        1 => Just(Gen::OpenLate),
        1 => idx().prop_map(|wallet| Gen::ConflictingAccount { wallet }),
    ]
}

fn gen_ops() -> impl Strategy<Value = Vec<Gen>> {
    prop::collection::vec(gen_op(), 1..80)
}

/// A concrete operation on the ledger.
#[derive(Clone, Debug)]
enum Op {
    Open(NewAccount),
    Apply(Request),
    Expire(Instant),
}

/// What the ledger answered.
#[derive(Clone, Debug)]
enum Outcome {
    Opened(Result<Status, LedgerError>),
    Applied(Result<Applied, LedgerError>),
    Expired(Vec<Transfer>),
}

fn execute(ledger: &mut Ledger, op: &Op) -> Outcome {
    match op {
        Op::Open(new) => Outcome::Opened(ledger.create_account(new)),
        Op::Apply(request) => Outcome::Applied(ledger.apply(request)),
        Op::Expire(now) => Outcome::Expired(ledger.expire(*now)),
    }
}

/// The ids and amounts issued so far (whether the ledger accepted them or not).
#[derive(Default)]
struct Issued {
    holds: Vec<(TransferId, Amount)>,
    captures: Vec<(TransferId, Amount)>,
    top_ups: Vec<(TransferId, Amount)>,
    transfers: Vec<(TransferId, Amount)>,
}

fn pick<T: Clone>(items: &[T], index: &Index) -> Option<T> {
    (!items.is_empty()).then(|| items[index.index(items.len())].clone())
}

fn percent_of(amount: Amount, percent: u8) -> Amount {
    Amount((amount.micros() * i128::from(percent) / 100).max(1))
}

impl Issued {
    fn concretize(&self, g: &Gen, ops: &[Op], ledger: &Ledger) -> Op {
        let n = ops.len();
        let wallets = wallets();
        let wallet = |i: &Index| wallets[i.index(wallets.len())].clone();
        let clock = ledger.expired_through().unwrap_or(0);
        let missing = || (TransferId::from("never-issued"), Amount::from_units(1));
        let pending: Vec<(TransferId, Amount)> = ledger
            .transfers()
            .iter()
            .filter(|t| {
                matches!(t.kind, TransferKind::Pending { .. })
                    && ledger.resolution(t.id.as_str()).is_none()
            })
            .map(|t| (t.id.clone(), t.amount))
            .collect();
        match g {
            Gen::TopUp { wallet: w, micros } => {
                let (id, currency) = wallet(w);
                Op::Apply(Request::Post {
                    id: format!("topup:{n}").into(),
                    debit_account: format!("funding:{currency}").into(),
                    credit_account: id,
                    amount: Amount::from_micros((*micros).into()),
                })
            }
            Gen::Move { from, to, micros } => Op::Apply(Request::Post {
                id: format!("move:{n}").into(),
                debit_account: wallet(from).0,
                credit_account: wallet(to).0,
                amount: Amount::from_micros((*micros).into()),
            }),
            Gen::Hold {
                wallet: w,
                micros,
                lifetime,
            } => {
                let (id, currency) = wallet(w);
                Op::Apply(Request::Hold {
                    id: format!("hold:{n}").into(),
                    debit_account: id,
                    credit_account: format!("revenue:{currency}").into(),
                    amount: Amount::from_micros((*micros).into()),
                    timeout: clock + lifetime,
                })
            }
            Gen::StaleHold { wallet: w, micros } => {
                let (id, currency) = wallet(w);
                Op::Apply(Request::Hold {
                    id: format!("hold:{n}").into(),
                    debit_account: id,
                    credit_account: format!("revenue:{currency}").into(),
                    amount: Amount::from_micros((*micros).into()),
                    timeout: clock,
                })
            }
            Gen::CrossCurrencyHold { wallet: w, micros } => {
                let (id, currency) = wallet(w);
                let other = if currency == "USD" { "EUR" } else { "USD" };
                Op::Apply(Request::Hold {
                    id: format!("hold:{n}").into(),
                    debit_account: id,
                    credit_account: format!("revenue:{other}").into(),
                    amount: Amount::from_micros((*micros).into()),
                    timeout: clock + 100,
                })
            }
            Gen::Capture { hold, fresh, mode } => {
                let holds = if *fresh { &pending } else { &self.holds };
                let (pending_id, held) = pick(holds, hold).unwrap_or_else(missing);
                let amount = match mode {
                    CaptureMode::Full => held,
                    CaptureMode::Partial(p) => percent_of(held, *p),
                    CaptureMode::Over(extra) => Amount(held.micros() + i128::from(*extra)),
                    CaptureMode::Zero => Amount::ZERO,
                };
                Op::Apply(Request::Capture {
                    id: format!("capture:{n}").into(),
                    pending_id,
                    amount,
                })
            }
            Gen::Release { hold, fresh } => {
                let holds = if *fresh { &pending } else { &self.holds };
                Op::Apply(Request::Release {
                    id: format!("release:{n}").into(),
                    pending_id: pick(holds, hold).unwrap_or_else(missing).0,
                })
            }
            Gen::ResolveAny { transfer, capture } => {
                let pending_id = pick(&self.transfers, transfer).unwrap_or_else(missing).0;
                let id = format!("resolve:{n}").into();
                Op::Apply(if *capture {
                    Request::Capture {
                        id,
                        pending_id,
                        amount: Amount(1),
                    }
                } else {
                    Request::Release { id, pending_id }
                })
            }
            Gen::Refund { capture, percent } => {
                let (of, amount) = pick(&self.captures, capture).unwrap_or_else(missing);
                Op::Apply(Request::Reverse {
                    id: format!("refund:{n}").into(),
                    of,
                    amount: percent_of(amount, *percent),
                })
            }
            Gen::Chargeback { top_up, percent } => {
                let (of, amount) = pick(&self.top_ups, top_up).unwrap_or_else(missing);
                Op::Apply(Request::Reverse {
                    id: format!("chargeback:{n}").into(),
                    of,
                    amount: percent_of(amount, *percent),
                })
            }
            Gen::ReverseAny { transfer, percent } => {
                let (of, amount) = pick(&self.transfers, transfer).unwrap_or_else(missing);
                Op::Apply(Request::Reverse {
                    id: format!("reverse:{n}").into(),
                    of,
                    amount: percent_of(amount, *percent),
                })
            }
            Gen::Expire { step, backwards } => Op::Expire(if *backwards {
                clock - step
            } else {
                clock + step
            }),
            Gen::Retry { op } => ops[op.index(n)].clone(),
            Gen::Conflict { op } => conflicting(&ops[op.index(n)]),
            Gen::OpenLate => Op::Open(late_account()),
            Gen::ConflictingAccount { wallet: w } => {
                let (id, currency) = wallet(w);
                Op::Open(NewAccount {
                    id,
                    currency: currency.into(),
                    kind: AccountKind::Revenue,
                })
            }
        }
    }

    fn note(&mut self, op: &Op) {
        let Op::Apply(request) = op else { return };
        let (id, amount) = match request {
            Request::Post { id, amount, .. } => {
                if id.as_str().starts_with("topup:") {
                    self.top_ups.push((id.clone(), *amount));
                }
                (id, *amount)
            }
            Request::Hold { id, amount, .. } => {
                self.holds.push((id.clone(), *amount));
                (id, *amount)
            }
            Request::Capture { id, amount, .. } => {
                self.captures.push((id.clone(), *amount));
                (id, *amount)
            }
            Request::Release { id, .. } => (id, Amount::from_units(1)),
            Request::Reverse { id, amount, .. } => (id, *amount),
        };
        self.transfers.push((id.clone(), amount));
    }
}

/// The same id with other content.
fn conflicting(op: &Op) -> Op {
    let bump = |a: &Amount| Amount(a.micros() + 1);
    match op {
        Op::Open(new) => Op::Open(NewAccount {
            kind: match new.kind {
                AccountKind::Funding => AccountKind::Revenue,
                _ => AccountKind::Funding,
            },
            ..new.clone()
        }),
        Op::Expire(now) => Op::Expire(*now),
        Op::Apply(request) => Op::Apply(match request.clone() {
            Request::Post {
                id,
                debit_account,
                credit_account,
                amount,
            } => Request::Post {
                id,
                debit_account,
                credit_account,
                amount: bump(&amount),
            },
            Request::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                timeout,
            } => Request::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                timeout: timeout + 1,
            },
            Request::Capture {
                id,
                pending_id,
                amount,
            } => Request::Capture {
                id,
                pending_id,
                amount: bump(&amount),
            },
            Request::Release { id, pending_id } => Request::Capture {
                id,
                pending_id,
                amount: Amount(1),
            },
            Request::Reverse { id, of, amount } => Request::Reverse {
                id,
                of,
                amount: bump(&amount),
            },
        }),
    }
}

/// A whole simulated run.
struct Run {
    ops: Vec<Op>,
    outcomes: Vec<Outcome>,
    /// `states[i]` is the ledger before `ops[i]`; the last one is the final state.
    states: Vec<Ledger>,
}

impl Run {
    fn final_state(&self) -> &Ledger {
        self.states.last().expect("at least the empty state")
    }

    /// Steps as (operation, outcome, state before, state after).
    fn steps(&self) -> impl Iterator<Item = (&Op, &Outcome, &Ledger, &Ledger)> {
        self.ops
            .iter()
            .zip(&self.outcomes)
            .zip(self.states.windows(2))
            .map(|((op, outcome), pair)| (op, outcome, &pair[0], &pair[1]))
    }
}

fn simulate(gens: &[Gen]) -> Run {
    let mut ledger = Ledger::new();
    let mut run = Run {
        ops: Vec::new(),
        outcomes: Vec::new(),
        states: Vec::new(),
    };
    let mut issued = Issued::default();
    let step = |run: &mut Run, ledger: &mut Ledger, op: Op| {
        run.states.push(ledger.clone());
        run.outcomes.push(execute(ledger, &op));
        run.ops.push(op);
    };
    for new in initial_accounts() {
        step(&mut run, &mut ledger, Op::Open(new));
    }
    for g in gens {
        let op = issued.concretize(g, &run.ops, &ledger);
        issued.note(&op);
        step(&mut run, &mut ledger, op);
    }
    run.states.push(ledger);
    run
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

fn wallet_policies(ledger: &Ledger) -> impl Iterator<Item = (&Account, &WalletPolicy)> {
    ledger
        .accounts()
        .iter()
        .filter_map(|a| a.wallet_policy().map(|p| (a, p)))
}

// ---------------------------------------------------------------------------------------------
// The auditor: counters rebuilt from the transfers alone
// ---------------------------------------------------------------------------------------------

/// Rebuilds every account's counters from the applied transfers, checking each transfer's shape
/// on the way (a capture on its hold's accounts and within it, a void or expiry of the whole
/// hold, a reversal backwards and within what is left, both accounts on the transfer's ledger).
fn audit(
    accounts: &[Account],
    transfers: &[Transfer],
) -> Result<BTreeMap<AccountId, Counters>, TestCaseError> {
    let currency: BTreeMap<&AccountId, &str> = accounts
        .iter()
        .map(|a| (&a.id, a.currency.as_str()))
        .collect();
    let mut counters: BTreeMap<AccountId, Counters> = accounts
        .iter()
        .map(|a| (a.id.clone(), Counters::default()))
        .collect();
    let mut seen: BTreeMap<&TransferId, &Transfer> = BTreeMap::new();
    let mut reversed: BTreeMap<&TransferId, i128> = BTreeMap::new();
    for t in transfers {
        prop_assert!(t.amount.micros() > 0, "{t:?}");
        prop_assert_ne!(&t.debit_account, &t.credit_account);
        prop_assert_eq!(currency.get(&t.debit_account), Some(&t.currency.as_str()));
        prop_assert_eq!(currency.get(&t.credit_account), Some(&t.currency.as_str()));
        prop_assert!(!seen.contains_key(&t.id), "duplicate transfer id {}", t.id);
        let a = t.amount.micros();
        let post = |c: &mut BTreeMap<AccountId, Counters>, amount: i128| {
            c.get_mut(&t.debit_account).unwrap().debits_posted.0 += amount;
            c.get_mut(&t.credit_account).unwrap().credits_posted.0 += amount;
        };
        let pending_of = |id: &TransferId| -> Result<&Transfer, TestCaseError> {
            let p = seen.get(id).copied();
            prop_assert!(
                matches!(
                    p,
                    Some(Transfer {
                        kind: TransferKind::Pending { .. },
                        ..
                    })
                ),
                "{} resolves {id}, which is no earlier pending transfer",
                t.id
            );
            let p = p.unwrap();
            prop_assert_eq!(&p.debit_account, &t.debit_account);
            prop_assert_eq!(&p.credit_account, &t.credit_account);
            Ok(p)
        };
        match &t.kind {
            TransferKind::Posted => post(&mut counters, a),
            TransferKind::Pending { .. } => {
                counters.get_mut(&t.debit_account).unwrap().debits_pending.0 += a;
                counters
                    .get_mut(&t.credit_account)
                    .unwrap()
                    .credits_pending
                    .0 += a;
            }
            TransferKind::PostPending {
                pending_id,
                released,
            } => {
                let p = pending_of(pending_id)?.amount.micros();
                prop_assert_eq!(a + released.micros(), p, "capture {} parts", t.id);
                prop_assert!(released.micros() >= 0);
                counters.get_mut(&t.debit_account).unwrap().debits_pending.0 -= p;
                counters
                    .get_mut(&t.credit_account)
                    .unwrap()
                    .credits_pending
                    .0 -= p;
                post(&mut counters, a);
            }
            TransferKind::VoidPending { pending_id } | TransferKind::Expired { pending_id, .. } => {
                let p = pending_of(pending_id)?;
                prop_assert_eq!(a, p.amount.micros(), "release {} of the whole hold", t.id);
                if let TransferKind::Expired { at, .. } = t.kind {
                    prop_assert_eq!(p.kind.clone(), TransferKind::Pending { timeout: at });
                }
                counters.get_mut(&t.debit_account).unwrap().debits_pending.0 -= a;
                counters
                    .get_mut(&t.credit_account)
                    .unwrap()
                    .credits_pending
                    .0 -= a;
            }
            TransferKind::Reversal { of } => {
                let o = seen.get(of).copied();
                prop_assert!(
                    matches!(
                        o,
                        Some(Transfer {
                            kind: TransferKind::Posted | TransferKind::PostPending { .. },
                            ..
                        })
                    ),
                    "{} reverses {of}, which is no earlier posted transfer",
                    t.id
                );
                let o = o.unwrap();
                prop_assert_eq!(&o.debit_account, &t.credit_account);
                prop_assert_eq!(&o.credit_account, &t.debit_account);
                let total = reversed.entry(of).or_default();
                *total += a;
                prop_assert!(
                    *total <= o.amount.micros(),
                    "{of} reversed beyond its amount"
                );
                post(&mut counters, a);
            }
        }
        seen.insert(&t.id, t);
    }
    Ok(counters)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Per ledger (currency), Σ debits = Σ credits, pending and posted separately, after every
    /// step; and the sums are what the accounts hold.
    #[test]
    fn per_currency_debits_equal_credits(gens in gen_ops()) {
        let run = simulate(&gens);
        for state in &run.states {
            for currency in CURRENCIES {
                let t = state.totals(currency);
                prop_assert_eq!(t.debits_posted, t.credits_posted, "{}", currency);
                prop_assert_eq!(t.debits_pending, t.credits_pending, "{}", currency);
                let posted: i128 = state.accounts().iter()
                    .filter(|a| a.currency == currency)
                    .map(|a| a.counters.balance().posted.micros())
                    .sum();
                prop_assert_eq!(posted, 0);
            }
        }
    }

    /// No wallet's available balance is ever below its floor (0, or a credit line), and no
    /// counter is negative or above the limit.
    #[test]
    fn no_wallet_below_its_floor(gens in gen_ops()) {
        let run = simulate(&gens);
        for state in &run.states {
            for (account, policy) in wallet_policies(state) {
                let available = account.counters.balance().available;
                prop_assert!(available >= policy.floor,
                    "{} at {} below its floor {}", account.id, available, policy.floor);
            }
            for account in state.accounts() {
                let c = account.counters;
                for counter in [c.debits_pending, c.debits_posted, c.credits_pending, c.credits_posted] {
                    prop_assert!(counter >= Amount::ZERO && counter <= Amount::MAX_COUNTER);
                }
            }
        }
    }

    /// Each pending transfer is resolved (captured, released or expired) at most once, its
    /// resolution never changes, and `pending_holds` lists exactly the unresolved ones.
    #[test]
    fn each_hold_resolved_at_most_once(gens in gen_ops()) {
        let run = simulate(&gens);
        let last = run.final_state();
        let mut resolvers: BTreeMap<&TransferId, Vec<&TransferId>> = BTreeMap::new();
        for t in last.transfers() {
            match &t.kind {
                TransferKind::PostPending { pending_id, .. }
                | TransferKind::VoidPending { pending_id }
                | TransferKind::Expired { pending_id, .. } => {
                    resolvers.entry(pending_id).or_default().push(&t.id);
                }
                _ => {}
            }
        }
        for (pending, by) in &resolvers {
            prop_assert_eq!(by.len(), 1, "{} resolved by {:?}", pending, by);
        }
        let mut unresolved: BTreeSet<&TransferId> = BTreeSet::new();
        for t in last.transfers() {
            if !matches!(t.kind, TransferKind::Pending { .. }) {
                prop_assert_eq!(last.resolution(t.id.as_str()), None);
                continue;
            }
            let resolution = last.resolution(t.id.as_str());
            let by = resolution.map(|r| match r {
                Resolution::Posted { by, .. } | Resolution::Voided { by } | Resolution::Expired { by, .. } => by,
            });
            prop_assert_eq!(by, resolvers.get(&t.id).map(|b| b[0]), "{}", t.id);
            if resolution.is_none() {
                unresolved.insert(&t.id);
            }
        }
        for account in last.accounts() {
            for hold in last.pending_holds(account.id.as_str()).unwrap() {
                prop_assert!(unresolved.contains(&hold.id));
                prop_assert!(hold.debit_account == account.id || hold.credit_account == account.id);
            }
        }
        let listed: usize = last.accounts().iter()
            .map(|a| last.pending_holds(a.id.as_str()).unwrap().len())
            .sum();
        prop_assert_eq!(listed, 2 * unresolved.len());
        // Once resolved, always resolved the same way.
        for (_, _, before, after) in run.steps() {
            for t in before.transfers() {
                if let Some(r) = before.resolution(t.id.as_str()) {
                    prop_assert_eq!(after.resolution(t.id.as_str()), Some(r));
                }
            }
        }
    }

    /// A refused operation, an exact retry (`Exists`) and an expiry with nothing due change
    /// nothing; an accepted one appends exactly the transfer it answers.
    #[test]
    fn a_refused_operation_changes_nothing(gens in gen_ops()) {
        let run = simulate(&gens);
        for (op, outcome, before, after) in run.steps() {
            match outcome {
                Outcome::Opened(Err(_)) | Outcome::Applied(Err(_)) => {
                    prop_assert!(after == before, "refused {:?} changed the ledger", op);
                }
                Outcome::Opened(Ok(Status::Exists)) => prop_assert!(after == before),
                Outcome::Opened(Ok(Status::Created)) => {
                    prop_assert_eq!(after.accounts().len(), before.accounts().len() + 1);
                    prop_assert_eq!(after.transfers(), before.transfers());
                }
                Outcome::Applied(Ok(applied)) => match applied.status {
                    Status::Exists => {
                        prop_assert!(after == before, "retry {:?} changed the ledger", op);
                        prop_assert!(before.transfers().contains(&applied.transfer));
                    }
                    Status::Created => {
                        prop_assert_eq!(&after.transfers()[..before.transfers().len()], before.transfers());
                        prop_assert_eq!(&after.transfers()[before.transfers().len()..], std::slice::from_ref(&applied.transfer));
                    }
                },
                Outcome::Expired(done) => {
                    if done.is_empty() {
                        prop_assert_eq!(after.transfers(), before.transfers());
                        prop_assert_eq!(after.accounts(), before.accounts());
                    } else {
                        prop_assert_eq!(&after.transfers()[before.transfers().len()..], &done[..]);
                    }
                }
            }
        }
    }

    /// A transfer id is an idempotency key: a request whose id was taken answers `Exists` when it
    /// is the very request that created it, and `ExistsWithDifferentContent` otherwise (unless it
    /// is malformed); an account id likewise.
    #[test]
    fn same_id_answers_exists_only_for_the_same_content(gens in gen_ops()) {
        let run = simulate(&gens);
        let mut creators: BTreeMap<TransferId, &Request> = BTreeMap::new();
        let mut opened: BTreeMap<AccountId, &NewAccount> = BTreeMap::new();
        for (op, outcome, _, _) in run.steps() {
            match (op, outcome) {
                (Op::Apply(request), Outcome::Applied(answer)) => {
                    match (creators.get(request.id()), answer) {
                        (None, Ok(a)) => {
                            prop_assert_eq!(a.status, Status::Created);
                            creators.insert(request.id().clone(), request);
                        }
                        (None, Err(e)) => prop_assert!(
                            !matches!(e, LedgerError::ExistsWithDifferentContent { .. }), "{:?}", op),
                        (Some(first), Ok(a)) => {
                            prop_assert_eq!(a.status, Status::Exists);
                            prop_assert_eq!(*first, request);
                        }
                        (Some(first), Err(e)) => {
                            prop_assert_ne!(*first, request);
                            prop_assert!(matches!(e, LedgerError::ExistsWithDifferentContent { .. }
                                | LedgerError::NonPositiveAmount { .. }), "{:?}: {:?}", op, e);
                        }
                    }
                }
                (Op::Open(new), Outcome::Opened(answer)) => match (opened.get(&new.id), answer) {
                    (None, Ok(status)) => {
                        prop_assert_eq!(*status, Status::Created);
                        opened.insert(new.id.clone(), new);
                    }
                    (Some(first), Ok(status)) => {
                        prop_assert_eq!(*status, Status::Exists);
                        prop_assert_eq!(*first, new);
                    }
                    (Some(first), Err(e)) => {
                        prop_assert_ne!(*first, new);
                        prop_assert!(matches!(e, LedgerError::AccountExistsWithDifferentContent { .. }), "{:?}: {:?}", new, e);
                    }
                    (None, Err(e)) => prop_assert!(false, "{:?}: {:?}", new, e),
                },
                _ => {}
            }
        }
    }

    /// Replaying any prefix of the operations (in order, on the final state) changes nothing:
    /// every operation that was applied answers `Exists` with the same transfer, every expiry
    /// finds nothing due, and every operation that was refused for good is refused again (or
    /// finds its id taken). Requests refused for a transient reason whose id is still free are
    /// new attempts, not replays (see the module doc), and are left out.
    #[test]
    fn replaying_any_prefix_changes_nothing(gens in gen_ops(), cut in any::<Index>()) {
        let run = simulate(&gens);
        let last = run.final_state();
        for prefix in [cut.index(run.ops.len() + 1), run.ops.len()] {
            let mut ledger = last.clone();
            for (i, op) in run.ops[..prefix].iter().enumerate() {
                let original = &run.outcomes[i];
                if let (Op::Apply(request), Outcome::Applied(Err(e))) = (op, original) {
                    if e.is_transient() && last.transfer(request.id().as_str()).is_none() {
                        continue;
                    }
                }
                let again = execute(&mut ledger, op);
                prop_assert!(&ledger == last, "replaying {:?} changed the ledger", op);
                match (original, &again) {
                    (Outcome::Opened(Ok(_)), Outcome::Opened(Ok(Status::Exists)))
                    | (Outcome::Opened(Err(_)), Outcome::Opened(Err(_)))
                    | (Outcome::Applied(Err(_)), Outcome::Applied(Err(_))) => {}
                    (Outcome::Applied(Ok(first)), Outcome::Applied(Ok(now))) => {
                        prop_assert_eq!(now.status, Status::Exists);
                        prop_assert_eq!(&now.transfer, &first.transfer);
                        prop_assert!(!now.crossed_low_balance);
                    }
                    (Outcome::Applied(Err(_)), Outcome::Applied(Ok(now))) => {
                        prop_assert_eq!(now.status, Status::Exists);
                    }
                    (Outcome::Expired(_), Outcome::Expired(now)) => prop_assert!(now.is_empty()),
                    (first, now) => prop_assert!(false, "{:?}: {:?} then {:?}", op, first, now),
                }
            }
        }
    }

    /// An independent auditor rebuilds every account's four counters from the transfers the
    /// operations answered (which must be the ledger's transfers, in order) and finds the
    /// ledger's counters; each account's history is the transfers touching it.
    #[test]
    fn auditor_recomputes_every_counter(gens in gen_ops()) {
        let run = simulate(&gens);
        let last = run.final_state();
        let mut answered: Vec<Transfer> = Vec::new();
        for outcome in &run.outcomes {
            match outcome {
                Outcome::Applied(Ok(a)) if a.status == Status::Created => answered.push(a.transfer.clone()),
                Outcome::Expired(done) => answered.extend(done.iter().cloned()),
                _ => {}
            }
        }
        prop_assert_eq!(last.transfers(), &answered[..]);
        let expected = audit(last.accounts(), &answered)?;
        for account in last.accounts() {
            prop_assert_eq!(account.counters, expected[&account.id], "{}", account.id);
            prop_assert_eq!(last.balance(account.id.as_str()).unwrap(), account.counters.balance());
            let history: Vec<&Transfer> = last.history(account.id.as_str()).unwrap().collect();
            let touching: Vec<&Transfer> = answered.iter()
                .filter(|t| t.debit_account == account.id || t.credit_account == account.id)
                .collect();
            prop_assert_eq!(history, touching, "history of {}", account.id);
        }
    }

    /// The low-balance signal is raised exactly once per crossing: by the transfer that takes a
    /// wallet with a threshold from at or above it to below it, and by no other step.
    #[test]
    fn low_balance_signalled_once_per_crossing(gens in gen_ops()) {
        let run = simulate(&gens);
        for (op, outcome, before, after) in run.steps() {
            let signalled = match outcome {
                Outcome::Applied(Ok(a)) => a.crossed_low_balance.then_some(&a.transfer.debit_account),
                _ => None,
            };
            let mut crossed = Vec::new();
            for (account, policy) in wallet_policies(after) {
                let Some(threshold) = policy.low_balance_threshold else { continue };
                let was = before.balance(account.id.as_str()).map(|b| b.available);
                let now = account.counters.balance().available;
                if matches!(was, Ok(was) if was >= threshold) && now < threshold {
                    crossed.push(&account.id);
                }
            }
            prop_assert_eq!(crossed, signalled.into_iter().collect::<Vec<_>>(), "{:?}", op);
        }
    }
}

/// The generated worlds reach every outcome the properties are about (so that they are not
/// vacuously true): refusals of each kind, retries, captures, expiries, crossings.
#[test]
fn generator_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..CASES {
        let gens = gen_ops().new_tree(&mut runner).unwrap().current();
        let run = simulate(&gens);
        for outcome in &run.outcomes {
            let kind = match outcome {
                Outcome::Opened(Ok(s)) => format!("open {s:?}"),
                Outcome::Opened(Err(e)) | Outcome::Applied(Err(e)) => {
                    let text = format!("{e:?}");
                    text[..text.find([' ', '{']).unwrap_or(text.len())].to_string()
                }
                Outcome::Applied(Ok(a)) => {
                    let kind = format!("{:?}", a.transfer.kind);
                    let kind = &kind[..kind.find([' ', '{']).unwrap_or(kind.len())];
                    let crossed = if a.crossed_low_balance {
                        " crossed"
                    } else {
                        ""
                    };
                    format!("{:?} {kind}{crossed}", a.status)
                }
                Outcome::Expired(done) if done.is_empty() => "expired nothing".into(),
                Outcome::Expired(_) => "expired".into(),
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    for wanted in [
        "open Exists",
        "AccountExistsWithDifferentContent",
        "ExistsWithDifferentContent",
        "NonPositiveAmount",
        "UnknownAccount",
        "UnknownTransfer",
        "SameAccount",
        "CurrencyMismatch",
        "NotPending",
        "AlreadyResolved",
        "ExceedsPending",
        "NotReversible",
        "ExceedsReversible",
        "TimeoutPassed",
        "InsufficientFunds",
        "Created Posted",
        "Created Pending",
        "Created Pending crossed",
        "Created PostPending",
        "Created VoidPending",
        "Created Reversal",
        "Exists Posted",
        "Exists Pending",
        "Exists PostPending",
        "expired",
        "expired nothing",
    ] {
        assert!(seen.contains_key(wanted), "no {wanted:?} in {seen:#?}");
    }
}
