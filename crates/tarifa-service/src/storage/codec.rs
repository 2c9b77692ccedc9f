//! The stored formats of what is not a plain column: ledger operations (the wallet's log,
//! replayed at every start), the counters a charge moved, and amounts. Storage owns them: the
//! core's and the domain's types can change (a variant renamed, a field added) without changing
//! a byte of what is stored, because each is written and read through the types below, whose
//! shape is the format. A test pins the bytes.
//!
//! Version 1, the only one so far, is what every release has written: a ledger operation is the
//! JSON of [`StoredOp`] without a version tag. A later format will be written as
//! `{"v":N,…}` and read beside version 1, so a database never needs rewriting.

use crate::domain::effects::LedgerOp;
use anyhow::{bail, Context, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tarifa_core::category::PricingType;
use tarifa_core::engine::{Counter, CounterKey};
use tarifa_core::ledger::{
    AccountId, AccountKind, Amount, NewAccount, Request, TransferId, WalletPolicy,
};
use tarifa_core::time::Month;

/// The format written by this release.
pub const LEDGER_FORMAT: u32 = 1;

/// A ledger operation as stored (version 1).
#[derive(Serialize, Deserialize)]
enum StoredOp {
    CreateAccount(StoredAccount),
    Apply(StoredRequest),
    Expire(i64),
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    id: String,
    currency: String,
    kind: StoredKind,
}

#[derive(Serialize, Deserialize)]
enum StoredKind {
    Wallet(StoredPolicy),
    Revenue,
    Funding,
}

/// Amounts are integers of micro-units.
#[derive(Serialize, Deserialize)]
struct StoredPolicy {
    floor: i128,
    low_balance_threshold: Option<i128>,
}

#[derive(Serialize, Deserialize)]
enum StoredRequest {
    Post {
        id: String,
        debit_account: String,
        credit_account: String,
        amount: i128,
    },
    Hold {
        id: String,
        debit_account: String,
        credit_account: String,
        amount: i128,
        timeout: i64,
    },
    Capture {
        id: String,
        pending_id: String,
        amount: i128,
    },
    Release {
        id: String,
        pending_id: String,
    },
    Reverse {
        id: String,
        of: String,
        amount: i128,
    },
}

/// The stored text of a ledger operation.
pub fn encode_ledger_op(op: &LedgerOp) -> Result<String> {
    serde_json::to_string(&StoredOp::from(op)).context("encoding a ledger operation")
}

/// A stored ledger operation read back.
pub fn decode_ledger_op(text: &str) -> Result<LedgerOp> {
    if text.starts_with("{\"v\":") {
        bail!("ledger operation of a format newer than {LEDGER_FORMAT}: {text}");
    }
    let stored: StoredOp = serde_json::from_str(text)
        .with_context(|| format!("unreadable ledger operation {text}"))?;
    Ok(stored.into())
}

impl From<&LedgerOp> for StoredOp {
    fn from(op: &LedgerOp) -> StoredOp {
        match op {
            LedgerOp::CreateAccount(a) => StoredOp::CreateAccount(StoredAccount {
                id: a.id.0.clone(),
                currency: a.currency.clone(),
                kind: match a.kind {
                    AccountKind::Wallet(p) => StoredKind::Wallet(StoredPolicy {
                        floor: p.floor.0,
                        low_balance_threshold: p.low_balance_threshold.map(|t| t.0),
                    }),
                    AccountKind::Revenue => StoredKind::Revenue,
                    AccountKind::Funding => StoredKind::Funding,
                },
            }),
            LedgerOp::Apply(r) => StoredOp::Apply(StoredRequest::from(r)),
            LedgerOp::Expire(at) => StoredOp::Expire(*at),
        }
    }
}

impl From<&Request> for StoredRequest {
    fn from(r: &Request) -> StoredRequest {
        let text = |id: &TransferId| id.0.clone();
        let account = |id: &AccountId| id.0.clone();
        match r {
            Request::Post {
                id,
                debit_account,
                credit_account,
                amount,
            } => StoredRequest::Post {
                id: text(id),
                debit_account: account(debit_account),
                credit_account: account(credit_account),
                amount: amount.0,
            },
            Request::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                timeout,
            } => StoredRequest::Hold {
                id: text(id),
                debit_account: account(debit_account),
                credit_account: account(credit_account),
                amount: amount.0,
                timeout: *timeout,
            },
            Request::Capture {
                id,
                pending_id,
                amount,
            } => StoredRequest::Capture {
                id: text(id),
                pending_id: text(pending_id),
                amount: amount.0,
            },
            Request::Release { id, pending_id } => StoredRequest::Release {
                id: text(id),
                pending_id: text(pending_id),
            },
            Request::Reverse { id, of, amount } => StoredRequest::Reverse {
                id: text(id),
                of: text(of),
                amount: amount.0,
            },
        }
    }
}

impl From<StoredOp> for LedgerOp {
    fn from(op: StoredOp) -> LedgerOp {
        match op {
            StoredOp::CreateAccount(a) => LedgerOp::CreateAccount(NewAccount {
                id: AccountId(a.id),
                currency: a.currency,
                kind: match a.kind {
                    StoredKind::Wallet(p) => AccountKind::Wallet(WalletPolicy {
                        floor: Amount(p.floor),
                        low_balance_threshold: p.low_balance_threshold.map(Amount),
                    }),
                    StoredKind::Revenue => AccountKind::Revenue,
                    StoredKind::Funding => AccountKind::Funding,
                },
            }),
            StoredOp::Apply(r) => LedgerOp::Apply(r.into()),
            StoredOp::Expire(at) => LedgerOp::Expire(at),
        }
    }
}

impl From<StoredRequest> for Request {
    fn from(r: StoredRequest) -> Request {
        match r {
            StoredRequest::Post {
                id,
                debit_account,
                credit_account,
                amount,
            } => Request::Post {
                id: TransferId(id),
                debit_account: AccountId(debit_account),
                credit_account: AccountId(credit_account),
                amount: Amount(amount),
            },
            StoredRequest::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                timeout,
            } => Request::Hold {
                id: TransferId(id),
                debit_account: AccountId(debit_account),
                credit_account: AccountId(credit_account),
                amount: Amount(amount),
                timeout,
            },
            StoredRequest::Capture {
                id,
                pending_id,
                amount,
            } => Request::Capture {
                id: TransferId(id),
                pending_id: TransferId(pending_id),
                amount: Amount(amount),
            },
            StoredRequest::Release { id, pending_id } => Request::Release {
                id: TransferId(id),
                pending_id: TransferId(pending_id),
            },
            StoredRequest::Reverse { id, of, amount } => Request::Reverse {
                id: TransferId(id),
                of: TransferId(of),
                amount: Amount(amount),
            },
        }
    }
}

/// A counter key as stored with a charge.
#[derive(Serialize, Deserialize)]
struct StoredCounter {
    counter: String,
    owner: String,
    bucket: u32,
    month: i32,
}

/// The stored text of the counters a charge moved: a JSON array.
pub fn encode_counters(keys: &[CounterKey]) -> Result<String> {
    let stored: Vec<StoredCounter> = keys
        .iter()
        .map(|k| StoredCounter {
            counter: k.counter.as_str().into(),
            owner: k.owner.clone(),
            bucket: k.bucket,
            month: k.month.0,
        })
        .collect();
    serde_json::to_string(&stored).context("encoding counters")
}

/// The counters of a stored charge.
pub fn decode_counters(text: &str) -> Result<Vec<CounterKey>> {
    let stored: Vec<StoredCounter> =
        serde_json::from_str(text).with_context(|| format!("unreadable counters {text}"))?;
    stored
        .into_iter()
        .map(|s| {
            Ok(CounterKey {
                counter: Counter::parse(&s.counter)
                    .with_context(|| format!("unknown counter {:?}", s.counter))?,
                owner: s.owner,
                bucket: s.bucket,
                month: Month(s.month),
            })
        })
        .collect()
}

/// An exact amount as stored: its shortest decimal text (`0.0585`, `20`).
pub fn encode_decimal(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A ledger amount as stored: its shortest decimal text.
pub fn encode_amount(value: Amount) -> String {
    value
        .to_decimal()
        .map(encode_decimal)
        .unwrap_or_else(|_| value.to_string())
}

pub fn decode_decimal(text: &str) -> Result<Decimal> {
    text.parse()
        .with_context(|| format!("unreadable amount {text:?}"))
}

pub fn decode_amount(text: &str) -> Result<Amount> {
    Amount::from_decimal(decode_decimal(text)?)
        .map_err(|e| anyhow::anyhow!("amount {text:?}: {e:?}"))
}

/// The stored name of a pricing type.
pub fn decode_pricing_type(text: &str) -> Result<PricingType> {
    PricingType::parse(text).with_context(|| format!("unknown pricing type {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1 byte for byte, as the releases before this one wrote it (the lines are those of
    /// the compatibility fixture's database): each decodes and encodes back to the same text.
    #[test]
    fn ledger_format_1_is_pinned() {
        let stored = [
            r#"{"CreateAccount":{"id":"funding:EUR","currency":"EUR","kind":"Funding"}}"#,
            r#"{"CreateAccount":{"id":"revenue:EUR","currency":"EUR","kind":"Revenue"}}"#,
            r#"{"CreateAccount":{"id":"wallet:waba-br","currency":"USD","kind":{"Wallet":{"floor":0,"low_balance_threshold":10000000}}}}"#,
            r#"{"CreateAccount":{"id":"wallet:waba-eu","currency":"EUR","kind":{"Wallet":{"floor":-5000000,"low_balance_threshold":null}}}}"#,
            r#"{"Apply":{"Post":{"id":"topup:pay-1","debit_account":"funding:EUR","credit_account":"wallet:waba-eu","amount":20000000}}}"#,
            r#"{"Apply":{"Hold":{"id":"hold:wamid.demo1","debit_account":"wallet:waba-eu","credit_account":"revenue:EUR","amount":58500,"timeout":1798877371}}}"#,
            r#"{"Apply":{"Release":{"id":"release:wamid.demo2","pending_id":"hold:wamid.demo2"}}}"#,
            r#"{"Apply":{"Capture":{"id":"capture:wamid.demo1","pending_id":"hold:wamid.demo1","amount":58500}}}"#,
            r#"{"Apply":{"Reverse":{"id":"refund:1","of":"capture:wamid.demo1","amount":100}}}"#,
            r#"{"Expire":1798877372}"#,
        ];
        for text in stored {
            let op = decode_ledger_op(text).unwrap();
            assert_eq!(encode_ledger_op(&op).unwrap(), text);
        }
        let hold = LedgerOp::Apply(Request::Hold {
            id: TransferId("hold:m".into()),
            debit_account: AccountId("wallet:b".into()),
            credit_account: AccountId("revenue:EUR".into()),
            amount: Amount(58_500),
            timeout: 1_798_877_371,
        });
        assert_eq!(
            encode_ledger_op(&hold).unwrap(),
            r#"{"Apply":{"Hold":{"id":"hold:m","debit_account":"wallet:b","credit_account":"revenue:EUR","amount":58500,"timeout":1798877371}}}"#
        );
    }

    #[test]
    fn unreadable_and_newer_ledger_lines_are_errors_that_quote_them() {
        let e = decode_ledger_op(r#"{"Apply":{"Teleport":{}}}"#).unwrap_err();
        assert!(format!("{e:#}").contains("Teleport"), "{e:#}");
        let e = decode_ledger_op(r#"{"v":2,"op":{}}"#).unwrap_err();
        assert!(format!("{e:#}").contains("newer than 1"), "{e:#}");
    }

    #[test]
    fn counters_amounts_and_pricing_types_are_pinned() {
        let text = r#"[{"counter":"free_service_messages","owner":"pn-1","bucket":0,"month":682}]"#;
        let keys = decode_counters(text).unwrap();
        assert_eq!(encode_counters(&keys).unwrap(), text);
        assert!(
            decode_counters(r#"[{"counter":"nope","owner":"","bucket":0,"month":0}]"#).is_err()
        );
        assert_eq!(encode_amount(decode_amount("0.0585").unwrap()), "0.0585");
        assert_eq!(encode_amount(decode_amount("20").unwrap()), "20");
        assert_eq!(encode_decimal("0.070200".parse().unwrap()), "0.0702");
        for t in ["regular", "free_tier", "free_customer_service", "unrated"] {
            assert_eq!(decode_pricing_type(t).unwrap().as_str(), t);
        }
        assert!(decode_pricing_type("gratis").is_err());
    }
}
