//! Prepaid wallets as a double-entry ledger that cannot lose or invent money (after TigerBeetle).
//!
//! A business pays for its chargeable messages from a prepaid wallet. Money moves only by
//! [`Transfer`]s: immutable records that take an amount from one account (debit) and give it to
//! another (credit) on the same ledger, one ledger per currency. Every account carries four
//! counters ([`Counters`]: debits and credits, pending and posted); balances are derived from
//! them ([`Balance`]), never stored separately. Because every transfer adds the same amount to one
//! debit counter and one credit counter of the same ledger, Σ debits = Σ credits holds per ledger
//! and per phase ([`Ledger::totals`]), so money is neither lost nor invented.
//!
//! The wallet's life, as entries ([`Request`] variants):
//!
//! | Business event | Entry |
//! |---|---|
//! | Top-up | [`Request::Post`] funding → wallet |
//! | Chargeable message sent | [`Request::Hold`]: pending wallet → revenue, with a timeout (refused with [`LedgerError::InsufficientFunds`], HTTP 402, when the wallet cannot cover it) |
//! | Delivery webhook, rated | [`Request::Capture`]: posts the rated amount, at most the hold; the rest is released |
//! | Failed, free, or never delivered | [`Request::Release`], or [`Ledger::expire`] after the timeout (Meta's 30 days) |
//! | Refund after capture | [`Request::Reverse`] of the capture: revenue → wallet, at most what was captured |
//!
//! Design decisions, each for one invariant:
//!
//! * **Idempotent ids.** A transfer's id is its idempotency key, derived from the business event
//!   (`topup:{request}`, `hold:{wamid}`, `capture:{wamid}`, …). A retry with the same id and the
//!   same content answers [`Status::Exists`] and changes nothing; the same id with other content
//!   is an error. Replaying any prefix of the events that were applied therefore changes nothing.
//! * **All or nothing.** A request is checked completely before anything is written: on error the
//!   ledger is unchanged, and an error leaves no trace (a hold refused for insufficient funds may
//!   succeed when retried after a top-up; [`LedgerError::is_transient`] says which errors can).
//! * **Wallets have a floor.** A wallet's available balance (posted credits − posted debits −
//!   pending debits) never goes below its floor (0 by default, negative for a credit line), so
//!   outstanding holds can never be overdrawn.
//! * **Two-phase transfers resolve once.** A pending transfer is posted (all or part), voided, or
//!   expired, exactly once; a second resolution answers [`LedgerError::AlreadyResolved`].
//! * **No clock.** Time is an argument: [`Ledger::expire`] voids the holds whose timeout has
//!   passed at the instant it is given. The ledger remembers the latest such instant and refuses
//!   new holds that would already be expired, so that replaying an expiry changes nothing.
//! * **Exact money.** [`Amount`] is an integer of micro-units (10⁻⁶ of the currency unit, enough
//!   for Meta's 4–6 decimal rates); conversions from `Decimal` never round, and the one rounding
//!   step is [`Amount::round_to_minor`], applied by the caller where a charge is posted.
//! * **Limits.** Ids are at most [`MAX_ID_LEN`] bytes; no account counter exceeds
//!   [`Amount::MAX_COUNTER`] ([`LedgerError::Overflow`] otherwise), so no arithmetic can overflow.
//!
//! Every type is plain data (serde), so that a storage layer can keep accounts and transfers as
//! rows and rebuild a [`Ledger`] by applying the stored requests again.

use crate::collections::GrowingMap;
use crate::time::Instant;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

/// An amount of money in micro-units (10⁻⁶ of the currency unit): `Amount(1_400)` is 0.0014.
/// Signed, because balances can be negative (a funding account, a wallet on a credit line).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(pub i128);

/// Why a value is not an [`Amount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// More than 6 decimals (after removing trailing zeros): it would have to be rounded.
    TooPrecise { value: Decimal },
    /// Negative where only zero or more is allowed.
    Negative { value: Decimal },
    /// Too large for a `Decimal` (about 7.9 × 10²² currency units).
    OutOfRange { micros: i128 },
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::TooPrecise { value } => {
                write!(f, "amount {value} has more than 6 decimals")
            }
            AmountError::Negative { value } => write!(f, "amount {value} is negative"),
            AmountError::OutOfRange { micros } => {
                write!(f, "amount of {micros} micro-units is out of range")
            }
        }
    }
}

impl std::error::Error for AmountError {}

impl Amount {
    /// Decimals kept: amounts are integers of 10⁻⁶ units.
    pub const SCALE: u32 = 6;
    /// Micro-units in one currency unit.
    pub const MICROS_PER_UNIT: i128 = 1_000_000;
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// The largest value of any account counter (10¹⁸ currency units): sums and differences of
    /// a few counters stay far inside `i128` and inside `Decimal`.
    pub const MAX_COUNTER: Amount = Amount(1_000_000_000_000_000_000_000_000);

    /// An amount of micro-units.
    pub const fn from_micros(micros: i128) -> Amount {
        Amount(micros)
    }

    /// An amount of whole currency units.
    pub const fn from_units(units: i64) -> Amount {
        Amount(units as i128 * Self::MICROS_PER_UNIT)
    }

    /// The micro-units.
    pub const fn micros(self) -> i128 {
        self.0
    }

    /// The exact amount of a decimal (signed); more than 6 decimals is an error, never rounded.
    pub fn from_decimal(value: Decimal) -> Result<Amount, AmountError> {
        let normal = value.normalize();
        let scale = normal.scale();
        if scale > Self::SCALE {
            return Err(AmountError::TooPrecise { value });
        }
        // |mantissa| < 2⁹⁶, times at most 10⁶: far inside i128.
        Ok(Amount(normal.mantissa() * 10i128.pow(Self::SCALE - scale)))
    }

    /// As [`Amount::from_decimal`], refusing negative values (a price, a top-up, a minimum).
    pub fn from_decimal_non_negative(value: Decimal) -> Result<Amount, AmountError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative { value });
        }
        Amount::from_decimal(value)
    }

    /// The exact decimal value (normalized: no trailing zeros).
    pub fn to_decimal(self) -> Result<Decimal, AmountError> {
        Decimal::try_from_i128_with_scale(self.0, Self::SCALE)
            .map(|d| d.normalize())
            .map_err(|_| AmountError::OutOfRange { micros: self.0 })
    }

    /// Rounds to the currency's minor unit (`exponent` decimals: 2 for USD, 0 for JPY, 3 for
    /// KWD), **half to even** (banker's rounding: 0.125 → 0.12, 0.135 → 0.14, −0.125 → −0.12),
    /// so that rounding many charges is unbiased; this is also `Decimal::round_dp`'s default.
    ///
    /// This is the one rounding step of the money path: the caller applies it where a charge is
    /// posted (the capture amount), never inside the ledger. An exponent of 6 or more changes
    /// nothing. Saturates at the ends of `i128` (unreachable for counters, see
    /// [`Amount::MAX_COUNTER`]).
    pub fn round_to_minor(self, exponent: u32) -> Amount {
        if exponent >= Self::SCALE {
            return self;
        }
        let unit = 10i128.pow(Self::SCALE - exponent);
        let quotient = self.0 / unit; // toward zero
        let twice_rest = (self.0 % unit).abs() * 2;
        let away = twice_rest > unit || (twice_rest == unit && quotient % 2 != 0);
        let quotient = if away {
            quotient + self.0.signum()
        } else {
            quotient
        };
        Amount(quotient.saturating_mul(unit))
    }

    /// Whether the amount is more than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `self + other`, `None` on `i128` overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self − other`, `None` on `i128` overflow.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    /// The exact decimal value without trailing zeros: `5`, `0.0014`, `-3.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = Self::MICROS_PER_UNIT as u128;
        let (whole, frac) = (abs / unit, abs % unit);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:06}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------

/// The longest account or transfer id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Transfer ids starting with this are made by [`Ledger::expire`] (`expire:{pending id}`) and
/// refused in requests.
pub const EXPIRY_ID_PREFIX: &str = "expire:";

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(text)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// An account's id, chosen by the caller (`wallet:{business}`, `revenue:USD`, …).
    AccountId
);
string_id!(
    /// A transfer's id and idempotency key, derived from the business event (`hold:{wamid}`).
    TransferId
);

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

/// What an account is for; only wallets have a rule on their balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    /// A customer's prepaid wallet (credit-balance): available balance ≥ floor, always.
    Wallet(WalletPolicy),
    /// The BSP's income from captured charges.
    Revenue,
    /// The operator's cash or top-up source; goes negative as it funds wallets.
    Funding,
}

/// A wallet's rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletPolicy {
    /// The lowest available balance allowed: 0 by default, negative for a credit line; never
    /// positive (a new wallet would start below it).
    pub floor: Amount,
    /// When a transfer takes the available balance from at or above this to below it,
    /// [`Applied::crossed_low_balance`] is set (a low-balance webhook).
    pub low_balance_threshold: Option<Amount>,
}

/// A request to open an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub id: AccountId,
    /// ISO 4217 code (three capital letters): the account's ledger.
    pub currency: String,
    pub kind: AccountKind,
}

/// The four counters of an account, in micro-units, each between 0 and
/// [`Amount::MAX_COUNTER`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub debits_pending: Amount,
    pub debits_posted: Amount,
    pub credits_pending: Amount,
    pub credits_posted: Amount,
}

impl Counters {
    /// The balance derived from the counters (credit-normal signs).
    pub fn balance(&self) -> Balance {
        let posted = Amount(self.credits_posted.0 - self.debits_posted.0);
        Balance {
            posted,
            pending: Amount(self.credits_pending.0 - self.debits_pending.0),
            available: Amount(posted.0 - self.debits_pending.0),
        }
    }
}

/// An account: what it was opened as, and its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub currency: String,
    pub kind: AccountKind,
    pub counters: Counters,
}

impl Account {
    /// The wallet's policy, `None` for other kinds.
    pub fn wallet_policy(&self) -> Option<&WalletPolicy> {
        match &self.kind {
            AccountKind::Wallet(policy) => Some(policy),
            _ => None,
        }
    }
}

/// A balance derived from an account's counters, credit-normal (a funded wallet is positive,
/// the funding account negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Posted credits − posted debits.
    pub posted: Amount,
    /// Pending credits − pending debits: what posting every pending transfer would add (a wallet
    /// with holds has a negative pending balance).
    pub pending: Amount,
    /// Posted − pending debits: what the account can still spend (before its floor). Pending
    /// credits do not count until posted.
    pub available: Amount,
}

/// Whether a wallet may use the free service tier under a minimum-balance rule (a BSP such
/// as Pancake requires 5 USD): its available balance (holds deducted) is at least `min_balance`.
/// No rule (`None`, the default of `price_list.min_balance_for_free_service`) always allows it.
pub fn may_use_free_service(wallet: &Balance, min_balance: Option<Amount>) -> bool {
    min_balance.is_none_or(|min| wallet.available >= min)
}

// ---------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------

/// A request to move money. Each variant is one business entry (see the module table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A transfer posted at once. Top-up: funding → wallet.
    Post {
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        amount: Amount,
    },
    /// A pending transfer that reserves `amount` until it is captured, released, or expired at
    /// `timeout`. Hold: wallet → revenue.
    Hold {
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        amount: Amount,
        timeout: Instant,
    },
    /// Posts `amount` (more than 0, at most the hold) of the pending transfer `pending_id`, on
    /// its accounts; the rest of the hold is released. Capture at the rated amount.
    Capture {
        id: TransferId,
        pending_id: TransferId,
        amount: Amount,
    },
    /// Voids the pending transfer `pending_id`: the whole hold is released.
    Release {
        id: TransferId,
        pending_id: TransferId,
    },
    /// A posted transfer back along a posted transfer or capture `of` (credit → debit), for at
    /// most what `of` moved minus what was already reversed. Refund after capture: revenue →
    /// wallet; reversing a top-up (chargeback) is wallet → funding and obeys the wallet's floor.
    Reverse {
        id: TransferId,
        of: TransferId,
        amount: Amount,
    },
}

impl Request {
    /// The request's id (idempotency key).
    pub fn id(&self) -> &TransferId {
        match self {
            Request::Post { id, .. }
            | Request::Hold { id, .. }
            | Request::Capture { id, .. }
            | Request::Release { id, .. }
            | Request::Reverse { id, .. } => id,
        }
    }

    /// The amount asked for, if the request has one.
    fn amount(&self) -> Option<Amount> {
        match self {
            Request::Post { amount, .. }
            | Request::Hold { amount, .. }
            | Request::Capture { amount, .. }
            | Request::Reverse { amount, .. } => Some(*amount),
            Request::Release { .. } => None,
        }
    }

    /// Whether `transfer` is what this request created (same content).
    fn matches(&self, transfer: &Transfer) -> bool {
        match (self, &transfer.kind) {
            (
                Request::Post {
                    debit_account,
                    credit_account,
                    amount,
                    ..
                },
                TransferKind::Posted,
            ) => {
                *debit_account == transfer.debit_account
                    && *credit_account == transfer.credit_account
                    && *amount == transfer.amount
            }
            (
                Request::Hold {
                    debit_account,
                    credit_account,
                    amount,
                    timeout,
                    ..
                },
                TransferKind::Pending { timeout: t },
            ) => {
                *debit_account == transfer.debit_account
                    && *credit_account == transfer.credit_account
                    && *amount == transfer.amount
                    && timeout == t
            }
            (
                Request::Capture {
                    pending_id, amount, ..
                },
                TransferKind::PostPending { pending_id: p, .. },
            ) => pending_id == p && *amount == transfer.amount,
            (Request::Release { pending_id, .. }, TransferKind::VoidPending { pending_id: p }) => {
                pending_id == p
            }
            (Request::Reverse { of, amount, .. }, TransferKind::Reversal { of: o }) => {
                of == o && *amount == transfer.amount
            }
            _ => false,
        }
    }
}

/// What a transfer did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferKind {
    /// Posted at once (top-up, adjustment).
    Posted,
    /// Pending until posted, voided, or expired at `timeout` (a hold).
    Pending { timeout: Instant },
    /// Posted `amount` of `pending_id` and released `released` (a capture).
    PostPending {
        pending_id: TransferId,
        released: Amount,
    },
    /// Released the whole of `pending_id` (`amount` is the hold's amount).
    VoidPending { pending_id: TransferId },
    /// Released the whole of `pending_id`, whose timeout `at` had passed (made by
    /// [`Ledger::expire`]).
    Expired { pending_id: TransferId, at: Instant },
    /// Posted back (part of) the posted transfer `of` (a refund).
    Reversal { of: TransferId },
}

/// An immutable transfer, as applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    /// The ledger (ISO code) of both accounts.
    pub currency: String,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    /// The amount posted or reserved; for a void or an expiry, the amount released.
    pub amount: Amount,
    pub kind: TransferKind,
}

/// How a pending transfer was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Captured (`amount` posted, the rest released) by transfer `by`.
    Posted { by: TransferId, amount: Amount },
    /// Released by transfer `by`.
    Voided { by: TransferId },
    /// Expired at its timeout `at`, recorded as transfer `by`.
    Expired { by: TransferId, at: Instant },
}

/// Whether a request created something or found it already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Applied now.
    Created,
    /// Applied before, with the same content (a retry): nothing changed.
    Exists,
}

/// The answer to an applied request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub status: Status,
    /// The transfer created now, or the one found.
    pub transfer: Transfer,
    /// The transfer took its debit account (a wallet with a low-balance threshold) from at or
    /// above the threshold to below it. Only the debit side can go down, so this is the debit
    /// account; a later transfer signals again only after the balance went back up to the
    /// threshold. Always false for [`Status::Exists`].
    pub crossed_low_balance: bool,
}

/// Why a request was refused. The ledger is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// Empty, longer than [`MAX_ID_LEN`], or (transfers) starting with [`EXPIRY_ID_PREFIX`].
    InvalidId {
        id: String,
    },
    /// Not three capital letters.
    InvalidCurrency {
        currency: String,
    },
    /// A wallet floor above zero.
    InvalidFloor {
        floor: Amount,
    },
    /// The account id exists with another currency or kind.
    AccountExistsWithDifferentContent {
        id: AccountId,
    },
    /// The transfer id exists with other content (a different request reused the key).
    ExistsWithDifferentContent {
        id: TransferId,
    },
    /// Zero or negative amount.
    NonPositiveAmount {
        amount: Amount,
    },
    UnknownAccount {
        id: AccountId,
    },
    /// The pending transfer or the transfer to reverse does not exist.
    UnknownTransfer {
        id: TransferId,
    },
    /// Debit and credit are the same account.
    SameAccount {
        id: AccountId,
    },
    /// Debit and credit accounts are on different ledgers.
    CurrencyMismatch {
        debit: String,
        credit: String,
    },
    /// Capture or release of a transfer that is not pending.
    NotPending {
        id: TransferId,
    },
    /// The pending transfer was already posted, voided, or expired.
    AlreadyResolved {
        pending_id: TransferId,
        resolution: Resolution,
    },
    /// Capture of more than the hold.
    ExceedsPending {
        pending_id: TransferId,
        pending: Amount,
        requested: Amount,
    },
    /// Reversal of a transfer that is not posted (a hold, a release, an expiry, a reversal).
    NotReversible {
        id: TransferId,
    },
    /// Reversal of more than remains of the transfer.
    ExceedsReversible {
        of: TransferId,
        remaining: Amount,
        requested: Amount,
    },
    /// A hold whose timeout is not after the latest instant given to [`Ledger::expire`].
    TimeoutPassed {
        timeout: Instant,
        expired_through: Instant,
    },
    /// The wallet cannot cover the debit (HTTP 402): `available` is what it can still spend
    /// (available balance − floor), `required` the amount asked.
    InsufficientFunds {
        account: AccountId,
        available: Amount,
        required: Amount,
    },
    /// A counter of the account would exceed [`Amount::MAX_COUNTER`].
    Overflow {
        account: AccountId,
    },
}

impl LedgerError {
    /// Whether the same request may succeed later, after other operations (a top-up, the
    /// creation of the account or of the pending transfer, the resolution of pending transfers).
    /// Every other error is final for this request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LedgerError::InsufficientFunds { .. }
                | LedgerError::UnknownAccount { .. }
                | LedgerError::UnknownTransfer { .. }
                | LedgerError::Overflow { .. }
        )
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::InvalidId { id } => match id.char_indices().nth(40) {
                // Never echo a long id whole: its first characters say which one it was.
                Some((cut, _)) => write!(
                    f,
                    "invalid id {:?}… ({} characters)",
                    &id[..cut],
                    id.chars().count()
                ),
                None => write!(f, "invalid id {id:?}"),
            },
            LedgerError::InvalidCurrency { currency } => {
                write!(f, "invalid currency {currency:?} (want an ISO 4217 code)")
            }
            LedgerError::InvalidFloor { floor } => {
                write!(f, "wallet floor {floor} is above zero")
            }
            LedgerError::AccountExistsWithDifferentContent { id } => {
                write!(f, "account {id} exists with another currency or kind")
            }
            LedgerError::ExistsWithDifferentContent { id } => {
                write!(f, "transfer {id} exists with different content")
            }
            LedgerError::NonPositiveAmount { amount } => {
                write!(f, "amount {amount} is not positive")
            }
            LedgerError::UnknownAccount { id } => write!(f, "no account {id}"),
            LedgerError::UnknownTransfer { id } => write!(f, "no transfer {id}"),
            LedgerError::SameAccount { id } => {
                write!(f, "account {id} is both debit and credit")
            }
            LedgerError::CurrencyMismatch { debit, credit } => {
                write!(f, "debit account is in {debit}, credit account in {credit}")
            }
            LedgerError::NotPending { id } => write!(f, "transfer {id} is not pending"),
            LedgerError::AlreadyResolved {
                pending_id,
                resolution,
            } => already_resolved(f, pending_id, resolution),
            LedgerError::ExceedsPending {
                pending_id,
                pending,
                requested,
            } => write!(
                f,
                "capture of {requested} exceeds the hold {pending_id} of {pending}"
            ),
            LedgerError::NotReversible { id } => {
                write!(f, "transfer {id} is not a posted transfer")
            }
            LedgerError::ExceedsReversible {
                of,
                remaining,
                requested,
            } => write!(
                f,
                "reversal of {requested} exceeds the {remaining} left of {of}"
            ),
            LedgerError::TimeoutPassed {
                timeout,
                expired_through,
            } => write!(
                f,
                "hold timeout {timeout} is not after the last expiry run at {expired_through}"
            ),
            LedgerError::InsufficientFunds {
                account,
                available,
                required,
            } => write!(
                f,
                "insufficient funds in {account}: {available} available, {required} required"
            ),
            LedgerError::Overflow { account } => {
                write!(f, "a counter of account {account} would overflow")
            }
        }
    }
}

/// Why a hold cannot be resolved again: how it was resolved.
fn already_resolved(
    f: &mut fmt::Formatter<'_>,
    pending_id: &TransferId,
    resolution: &Resolution,
) -> fmt::Result {
    match resolution {
        Resolution::Posted { by, amount } => {
            write!(
                f,
                "hold {pending_id} was already captured ({amount}) by {by}"
            )
        }
        Resolution::Voided { by } => {
            write!(f, "hold {pending_id} was already released by {by}")
        }
        Resolution::Expired { at, .. } => {
            write!(f, "hold {pending_id} already expired (timeout {at})")
        }
    }
}

impl std::error::Error for LedgerError {}

// ---------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------

/// All ledgers (one per currency): accounts, transfers in application order, the resolution of
/// pending transfers. A pure state machine: every method is a function of the state and its
/// arguments. `PartialEq` compares whole states (snapshots).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: Vec<Account>,
    account_index: FxHashMap<AccountId, u32>,
    transfers: Vec<Transfer>,
    /// The maps that grow with every message resize incrementally ([`GrowingMap`]).
    transfer_index: GrowingMap<TransferId, u32>,
    /// Per account: indices of the transfers touching it, in order.
    history: Vec<Vec<u32>>,
    /// Pending transfer index → how it was resolved.
    resolutions: GrowingMap<u32, Resolution>,
    /// Posted transfer index → amount reversed so far.
    reversed: FxHashMap<u32, Amount>,
    /// Unresolved pending transfers by (timeout, index).
    timeouts: BTreeSet<(Instant, u32)>,
    /// The latest instant given to `expire`.
    expired_through: Option<Instant>,
}

/// A checked transfer, ready to write.
struct Plan {
    transfer: Transfer,
    debit: u32,
    credit: u32,
    debit_counters: Counters,
    credit_counters: Counters,
    /// A pending transfer this resolves.
    resolves: Option<(u32, Resolution)>,
    /// A posted transfer this reverses, with its new reversed total.
    reverses: Option<(u32, Amount)>,
}

fn check_id(id: &str) -> Result<(), LedgerError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(LedgerError::InvalidId { id: id.to_owned() });
    }
    Ok(())
}

fn check_currency(currency: &str) -> Result<(), LedgerError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(LedgerError::InvalidCurrency {
            currency: currency.to_owned(),
        })
    }
}

/// `counter + amount`, within [`Amount::MAX_COUNTER`].
fn add(counter: Amount, amount: Amount, account: &AccountId) -> Result<Amount, LedgerError> {
    match counter.checked_add(amount) {
        Some(sum) if sum <= Amount::MAX_COUNTER => Ok(sum),
        _ => Err(LedgerError::Overflow {
            account: account.clone(),
        }),
    }
}

/// `counter − amount`, where the invariants guarantee `amount ≤ counter`.
fn sub(counter: Amount, amount: Amount) -> Amount {
    debug_assert!(amount <= counter, "counter {counter} below {amount}");
    Amount(counter.0 - amount.0)
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Opens an account; the same request again answers [`Status::Exists`].
    pub fn create_account(&mut self, new: &NewAccount) -> Result<Status, LedgerError> {
        check_id(new.id.as_str())?;
        check_currency(&new.currency)?;
        if let AccountKind::Wallet(policy) = &new.kind {
            if policy.floor > Amount::ZERO {
                return Err(LedgerError::InvalidFloor {
                    floor: policy.floor,
                });
            }
        }
        if let Some(&i) = self.account_index.get(new.id.as_str()) {
            let account = &self.accounts[i as usize];
            return if account.currency == new.currency && account.kind == new.kind {
                Ok(Status::Exists)
            } else {
                Err(LedgerError::AccountExistsWithDifferentContent { id: new.id.clone() })
            };
        }
        let index = self.accounts.len() as u32;
        self.accounts.push(Account {
            id: new.id.clone(),
            currency: new.currency.clone(),
            kind: new.kind.clone(),
            counters: Counters::default(),
        });
        self.account_index.insert(new.id.clone(), index);
        self.history.push(Vec::new());
        Ok(Status::Created)
    }

    /// Applies a transfer request completely, or not at all (the ledger is unchanged on error).
    pub fn apply(&mut self, request: &Request) -> Result<Applied, LedgerError> {
        let id = request.id();
        check_id(id.as_str())?;
        if id.as_str().starts_with(EXPIRY_ID_PREFIX) {
            return Err(LedgerError::InvalidId { id: id.0.clone() });
        }
        if let Some(amount) = request.amount() {
            if !amount.is_positive() {
                return Err(LedgerError::NonPositiveAmount { amount });
            }
        }
        if let Some(&i) = self.transfer_index.get(id.as_str()) {
            let existing = &self.transfers[i as usize];
            return if request.matches(existing) {
                Ok(Applied {
                    status: Status::Exists,
                    transfer: existing.clone(),
                    crossed_low_balance: false,
                })
            } else {
                Err(LedgerError::ExistsWithDifferentContent { id: id.clone() })
            };
        }
        let plan = self.plan(request)?;
        Ok(self.commit(plan))
    }

    /// Voids every unresolved pending transfer whose timeout is at or before `now` (or before the
    /// latest instant given earlier, whichever is later), in (timeout, application) order, each
    /// recorded as an [`TransferKind::Expired`] transfer with id `expire:{pending id}`; returns
    /// them. Calling it again with the same or an earlier instant does nothing.
    pub fn expire(&mut self, now: Instant) -> Vec<Transfer> {
        let through = self.expired_through.map_or(now, |t| t.max(now));
        self.expired_through = Some(through);
        let due: Vec<(Instant, u32)> = self
            .timeouts
            .range(..=(through, u32::MAX))
            .copied()
            .collect();
        let mut done = Vec::with_capacity(due.len());
        for (timeout, index) in due {
            let pending = &self.transfers[index as usize];
            let pending_id = pending.id.clone();
            let transfer = Transfer {
                id: TransferId(format!("{EXPIRY_ID_PREFIX}{pending_id}")),
                currency: pending.currency.clone(),
                debit_account: pending.debit_account.clone(),
                credit_account: pending.credit_account.clone(),
                amount: pending.amount,
                kind: TransferKind::Expired {
                    pending_id,
                    at: timeout,
                },
            };
            let debit = self.account_index[pending.debit_account.as_str()];
            let credit = self.account_index[pending.credit_account.as_str()];
            let mut debit_counters = self.accounts[debit as usize].counters;
            let mut credit_counters = self.accounts[credit as usize].counters;
            debit_counters.debits_pending = sub(debit_counters.debits_pending, pending.amount);
            credit_counters.credits_pending = sub(credit_counters.credits_pending, pending.amount);
            let resolution = Resolution::Expired {
                by: transfer.id.clone(),
                at: timeout,
            };
            let applied = self.commit(Plan {
                transfer,
                debit,
                credit,
                debit_counters,
                credit_counters,
                resolves: Some((index, resolution)),
                reverses: None,
            });
            done.push(applied.transfer);
        }
        done
    }

    /// Checks a new request against the state; writes nothing.
    fn plan(&self, request: &Request) -> Result<Plan, LedgerError> {
        match request {
            Request::Post {
                id,
                debit_account,
                credit_account,
                amount,
            } => self.plan_movement(
                id,
                debit_account,
                credit_account,
                *amount,
                TransferKind::Posted,
            ),
            Request::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                timeout,
            } => self.plan_hold(id, debit_account, credit_account, *amount, *timeout),
            Request::Capture {
                id,
                pending_id,
                amount,
            } => self.plan_resolution(id, pending_id, Some(*amount)),
            Request::Release { id, pending_id } => self.plan_resolution(id, pending_id, None),
            Request::Reverse { id, of, amount } => self.plan_reversal(id, of, *amount),
        }
    }

    /// A hold, unless its timeout is already past (the ledger expired through a later instant).
    fn plan_hold(
        &self,
        id: &TransferId,
        debit_account: &AccountId,
        credit_account: &AccountId,
        amount: Amount,
        timeout: Instant,
    ) -> Result<Plan, LedgerError> {
        if let Some(through) = self.expired_through {
            if timeout <= through {
                return Err(LedgerError::TimeoutPassed {
                    timeout,
                    expired_through: through,
                });
            }
        }
        let kind = TransferKind::Pending { timeout };
        self.plan_movement(id, debit_account, credit_account, amount, kind)
    }

    /// A movement back along a posted transfer or capture `of`, for at most what it moved minus
    /// what was reversed already.
    fn plan_reversal(
        &self,
        id: &TransferId,
        of: &TransferId,
        amount: Amount,
    ) -> Result<Plan, LedgerError> {
        let index = self.transfer_index(of)?;
        let original = &self.transfers[index as usize];
        if !matches!(
            original.kind,
            TransferKind::Posted | TransferKind::PostPending { .. }
        ) {
            return Err(LedgerError::NotReversible { id: of.clone() });
        }
        let done = self.reversed.get(&index).copied().unwrap_or_default();
        let remaining = sub(original.amount, done);
        if amount > remaining {
            return Err(LedgerError::ExceedsReversible {
                of: of.clone(),
                remaining,
                requested: amount,
            });
        }
        let mut plan = self.plan_movement(
            id,
            &original.credit_account,
            &original.debit_account,
            amount,
            TransferKind::Reversal { of: of.clone() },
        )?;
        plan.reverses = Some((index, Amount(done.0 + amount.0)));
        Ok(plan)
    }

    /// A posted or pending movement of `amount` from `debit` to `credit`.
    fn plan_movement(
        &self,
        id: &TransferId,
        debit_account: &AccountId,
        credit_account: &AccountId,
        amount: Amount,
        kind: TransferKind,
    ) -> Result<Plan, LedgerError> {
        let debit = self.account_index(debit_account)?;
        let credit = self.account_index(credit_account)?;
        if debit == credit {
            return Err(LedgerError::SameAccount {
                id: debit_account.clone(),
            });
        }
        let (d, c) = (
            &self.accounts[debit as usize],
            &self.accounts[credit as usize],
        );
        if d.currency != c.currency {
            return Err(LedgerError::CurrencyMismatch {
                debit: d.currency.clone(),
                credit: c.currency.clone(),
            });
        }
        let mut debit_counters = d.counters;
        let mut credit_counters = c.counters;
        if matches!(kind, TransferKind::Pending { .. }) {
            debit_counters.debits_pending = add(debit_counters.debits_pending, amount, &d.id)?;
            credit_counters.credits_pending = add(credit_counters.credits_pending, amount, &c.id)?;
        } else {
            debit_counters.debits_posted = add(debit_counters.debits_posted, amount, &d.id)?;
            credit_counters.credits_posted = add(credit_counters.credits_posted, amount, &c.id)?;
        }
        check_floor(d, &debit_counters, amount)?;
        Ok(Plan {
            transfer: Transfer {
                id: id.clone(),
                currency: d.currency.clone(),
                debit_account: d.id.clone(),
                credit_account: c.id.clone(),
                amount,
                kind,
            },
            debit,
            credit,
            debit_counters,
            credit_counters,
            resolves: None,
            reverses: None,
        })
    }

    /// The pending transfer `pending_id` and its index, if it may be captured for `capture` (or
    /// released, `None`): it is pending, not resolved yet, and holds at least the capture.
    fn resolvable(
        &self,
        pending_id: &TransferId,
        capture: Option<Amount>,
    ) -> Result<(u32, &Transfer), LedgerError> {
        let index = self.transfer_index(pending_id)?;
        let pending = &self.transfers[index as usize];
        if !matches!(pending.kind, TransferKind::Pending { .. }) {
            return Err(LedgerError::NotPending {
                id: pending_id.clone(),
            });
        }
        if let Some(resolution) = self.resolutions.get(&index) {
            return Err(LedgerError::AlreadyResolved {
                pending_id: pending_id.clone(),
                resolution: resolution.clone(),
            });
        }
        match capture {
            Some(amount) if amount > pending.amount => Err(LedgerError::ExceedsPending {
                pending_id: pending_id.clone(),
                pending: pending.amount,
                requested: amount,
            }),
            _ => Ok((index, pending)),
        }
    }

    /// Capture (`Some(amount)`) or release (`None`) of a pending transfer.
    fn plan_resolution(
        &self,
        id: &TransferId,
        pending_id: &TransferId,
        capture: Option<Amount>,
    ) -> Result<Plan, LedgerError> {
        let (index, pending) = self.resolvable(pending_id, capture)?;
        let debit = self.account_index[pending.debit_account.as_str()];
        let credit = self.account_index[pending.credit_account.as_str()];
        let (d, c) = (
            &self.accounts[debit as usize],
            &self.accounts[credit as usize],
        );
        let mut debit_counters = d.counters;
        let mut credit_counters = c.counters;
        debit_counters.debits_pending = sub(debit_counters.debits_pending, pending.amount);
        credit_counters.credits_pending = sub(credit_counters.credits_pending, pending.amount);
        let (amount, kind, resolution) = match capture {
            Some(amount) => {
                debit_counters.debits_posted = add(debit_counters.debits_posted, amount, &d.id)?;
                credit_counters.credits_posted =
                    add(credit_counters.credits_posted, amount, &c.id)?;
                (
                    amount,
                    TransferKind::PostPending {
                        pending_id: pending_id.clone(),
                        released: sub(pending.amount, amount),
                    },
                    Resolution::Posted {
                        by: id.clone(),
                        amount,
                    },
                )
            }
            None => (
                pending.amount,
                TransferKind::VoidPending {
                    pending_id: pending_id.clone(),
                },
                Resolution::Voided { by: id.clone() },
            ),
        };
        // Available balance cannot go down here (a capture moves at most the hold from pending
        // to posted), so the floor holds; checked anyway, as an assertion of that reasoning.
        check_floor(d, &debit_counters, amount)?;
        Ok(Plan {
            transfer: Transfer {
                id: id.clone(),
                currency: d.currency.clone(),
                debit_account: d.id.clone(),
                credit_account: c.id.clone(),
                amount,
                kind,
            },
            debit,
            credit,
            debit_counters,
            credit_counters,
            resolves: Some((index, resolution)),
            reverses: None,
        })
    }

    /// Writes a checked plan; cannot fail.
    fn commit(&mut self, plan: Plan) -> Applied {
        let index = self.transfers.len() as u32;
        let debit = &mut self.accounts[plan.debit as usize];
        let before = debit.counters.balance().available;
        debit.counters = plan.debit_counters;
        let after = debit.counters.balance().available;
        let crossed_low_balance = match debit.wallet_policy() {
            Some(WalletPolicy {
                low_balance_threshold: Some(threshold),
                ..
            }) => before >= *threshold && after < *threshold,
            _ => false,
        };
        self.accounts[plan.credit as usize].counters = plan.credit_counters;
        if let TransferKind::Pending { timeout } = plan.transfer.kind {
            self.timeouts.insert((timeout, index));
        }
        if let Some((pending, resolution)) = plan.resolves {
            if let TransferKind::Pending { timeout } = self.transfers[pending as usize].kind {
                self.timeouts.remove(&(timeout, pending));
            }
            self.resolutions.insert(pending, resolution);
        }
        if let Some((original, total)) = plan.reverses {
            self.reversed.insert(original, total);
        }
        self.history[plan.debit as usize].push(index);
        self.history[plan.credit as usize].push(index);
        self.transfer_index.insert(plan.transfer.id.clone(), index);
        self.transfers.push(plan.transfer.clone());
        Applied {
            status: Status::Created,
            transfer: plan.transfer,
            crossed_low_balance,
        }
    }

    fn account_index(&self, id: &AccountId) -> Result<u32, LedgerError> {
        self.account_index
            .get(id.as_str())
            .copied()
            .ok_or_else(|| LedgerError::UnknownAccount { id: id.clone() })
    }

    fn transfer_index(&self, id: &TransferId) -> Result<u32, LedgerError> {
        self.transfer_index
            .get(id.as_str())
            .copied()
            .ok_or_else(|| LedgerError::UnknownTransfer { id: id.clone() })
    }

    // -----------------------------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------------------------

    /// An account.
    pub fn account(&self, id: &str) -> Option<&Account> {
        let &i = self.account_index.get(id)?;
        Some(&self.accounts[i as usize])
    }

    /// All accounts, in creation order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// An account's balance.
    pub fn balance(&self, id: &str) -> Result<Balance, LedgerError> {
        self.account(id)
            .map(|a| a.counters.balance())
            .ok_or_else(|| LedgerError::UnknownAccount { id: id.into() })
    }

    /// The transfers touching an account, in application order.
    pub fn history(&self, id: &str) -> Result<impl Iterator<Item = &Transfer> + '_, LedgerError> {
        let &i = self
            .account_index
            .get(id)
            .ok_or_else(|| LedgerError::UnknownAccount { id: id.into() })?;
        Ok(self.history[i as usize]
            .iter()
            .map(|&t| &self.transfers[t as usize]))
    }

    /// The unresolved pending transfers (holds) on either side of an account, in application
    /// order.
    pub fn pending_holds(&self, id: &str) -> Result<Vec<&Transfer>, LedgerError> {
        let &i = self
            .account_index
            .get(id)
            .ok_or_else(|| LedgerError::UnknownAccount { id: id.into() })?;
        Ok(self.history[i as usize]
            .iter()
            .filter(|&&t| {
                matches!(
                    self.transfers[t as usize].kind,
                    TransferKind::Pending { .. }
                ) && !self.resolutions.contains_key(&t)
            })
            .map(|&t| &self.transfers[t as usize])
            .collect())
    }

    /// A transfer.
    pub fn transfer(&self, id: &str) -> Option<&Transfer> {
        let &i = self.transfer_index.get(id)?;
        Some(&self.transfers[i as usize])
    }

    /// All transfers, in application order.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// How a pending transfer was resolved; `None` while it is pending (or if it is not one).
    pub fn resolution(&self, pending_id: &str) -> Option<&Resolution> {
        let &i = self.transfer_index.get(pending_id)?;
        self.resolutions.get(&i)
    }

    /// What is left to reverse of a posted transfer or capture; `None` for other transfers.
    pub fn reversible(&self, id: &str) -> Option<Amount> {
        let &i = self.transfer_index.get(id)?;
        let transfer = &self.transfers[i as usize];
        match transfer.kind {
            TransferKind::Posted | TransferKind::PostPending { .. } => Some(sub(
                transfer.amount,
                self.reversed.get(&i).copied().unwrap_or_default(),
            )),
            _ => None,
        }
    }

    /// The latest instant given to [`Ledger::expire`].
    pub fn expired_through(&self) -> Option<Instant> {
        self.expired_through
    }

    /// Σ of each counter over the accounts of one ledger (currency). Debits equal credits, per
    /// phase, always. Sums saturate at `i128::MAX` (unreachable below 10¹⁴ accounts).
    pub fn totals(&self, currency: &str) -> Counters {
        let sum = |a: Amount, b: Amount| Amount(a.0.saturating_add(b.0));
        self.accounts
            .iter()
            .filter(|a| a.currency == currency)
            .fold(Counters::default(), |t, a| Counters {
                debits_pending: sum(t.debits_pending, a.counters.debits_pending),
                debits_posted: sum(t.debits_posted, a.counters.debits_posted),
                credits_pending: sum(t.credits_pending, a.counters.credits_pending),
                credits_posted: sum(t.credits_posted, a.counters.credits_posted),
            })
    }
}

/// The wallet rule: a debit may not take a wallet's available balance below its floor (checked
/// only when the balance goes down, which every debit does).
fn check_floor(account: &Account, after: &Counters, amount: Amount) -> Result<(), LedgerError> {
    let Some(policy) = account.wallet_policy() else {
        return Ok(());
    };
    let before = account.counters.balance().available;
    let after = after.balance().available;
    if after < policy.floor && after < before {
        return Err(LedgerError::InsufficientFunds {
            account: account.id.clone(),
            available: Amount(before.0 - policy.floor.0).max(Amount::ZERO),
            required: amount,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const USD: &str = "USD";

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn usd(s: &str) -> Amount {
        Amount::from_decimal(dec(s)).unwrap()
    }

    fn account(id: &str, currency: &str, kind: AccountKind) -> NewAccount {
        NewAccount {
            id: id.into(),
            currency: currency.into(),
            kind,
        }
    }

    fn wallet(floor: &str, threshold: Option<&str>) -> AccountKind {
        AccountKind::Wallet(WalletPolicy {
            floor: usd(floor),
            low_balance_threshold: threshold.map(usd),
        })
    }

    fn post(id: &str, debit: &str, credit: &str, amount: &str) -> Request {
        Request::Post {
            id: id.into(),
            debit_account: debit.into(),
            credit_account: credit.into(),
            amount: usd(amount),
        }
    }

    fn hold(id: &str, wallet: &str, amount: &str, timeout: Instant) -> Request {
        Request::Hold {
            id: id.into(),
            debit_account: wallet.into(),
            credit_account: "revenue".into(),
            amount: usd(amount),
            timeout,
        }
    }

    fn capture(id: &str, pending: &str, amount: &str) -> Request {
        Request::Capture {
            id: id.into(),
            pending_id: pending.into(),
            amount: usd(amount),
        }
    }

    fn release(id: &str, pending: &str) -> Request {
        Request::Release {
            id: id.into(),
            pending_id: pending.into(),
        }
    }

    fn reverse(id: &str, of: &str, amount: &str) -> Request {
        Request::Reverse {
            id: id.into(),
            of: of.into(),
            amount: usd(amount),
        }
    }

    /// funding, revenue, `w` (floor 0, low balance below 10), `credit` (floor −50), and an EUR
    /// wallet; `w` is topped up with 100.
    fn setup() -> Ledger {
        let mut ledger = Ledger::new();
        for new in [
            account("funding", USD, AccountKind::Funding),
            account("revenue", USD, AccountKind::Revenue),
            account("w", USD, wallet("0", Some("10"))),
            account("credit", USD, wallet("-50", None)),
            account("eur-wallet", "EUR", wallet("0", None)),
            account("eur-funding", "EUR", AccountKind::Funding),
        ] {
            assert_eq!(ledger.create_account(&new), Ok(Status::Created));
        }
        ledger
            .apply(&post("topup:1", "funding", "w", "100"))
            .unwrap();
        ledger
    }

    fn balance(ledger: &Ledger, id: &str) -> (String, String, String) {
        let b = ledger.balance(id).unwrap();
        (
            b.posted.to_string(),
            b.pending.to_string(),
            b.available.to_string(),
        )
    }

    fn bal(posted: &str, pending: &str, available: &str) -> (String, String, String) {
        (posted.into(), pending.into(), available.into())
    }

    fn assert_balanced(ledger: &Ledger) {
        for currency in [USD, "EUR"] {
            let t = ledger.totals(currency);
            assert_eq!(t.debits_posted, t.credits_posted);
            assert_eq!(t.debits_pending, t.credits_pending);
        }
    }

    /// The request fails with `error` and leaves the ledger as it was.
    fn refused(ledger: &mut Ledger, request: &Request) -> LedgerError {
        let before = ledger.clone();
        let error = ledger.apply(request).unwrap_err();
        assert_eq!(*ledger, before, "{error} changed the ledger");
        error
    }

    // Money

    #[test]
    fn amount_from_decimal_is_exact() {
        assert_eq!(usd("0.0014"), Amount(1_400));
        assert_eq!(usd("5"), Amount::from_units(5));
        assert_eq!(usd("-3.5"), Amount(-3_500_000));
        assert_eq!(usd("0.000001"), Amount(1));
        // Trailing zeros beyond 6 decimals are not precision.
        assert_eq!(usd("1.50000000"), Amount(1_500_000));
        assert_eq!(
            Amount::from_decimal(Decimal::MAX),
            Ok(Amount(Decimal::MAX.mantissa() * Amount::MICROS_PER_UNIT))
        );
    }

    #[test]
    fn amount_refuses_more_than_six_decimals() {
        assert_eq!(
            Amount::from_decimal(dec("0.0000001")),
            Err(AmountError::TooPrecise {
                value: dec("0.0000001")
            })
        );
        assert!(Amount::from_decimal(dec("1.0000015")).is_err());
    }

    #[test]
    fn amount_refuses_negative_where_not_allowed() {
        assert_eq!(
            Amount::from_decimal_non_negative(dec("-0.01")),
            Err(AmountError::Negative {
                value: dec("-0.01")
            })
        );
        assert_eq!(
            Amount::from_decimal_non_negative(dec("0")),
            Ok(Amount::ZERO)
        );
        assert_eq!(
            Amount::from_decimal_non_negative(dec("-0")),
            Ok(Amount::ZERO)
        );
        assert_eq!(
            Amount::from_decimal_non_negative(dec("2.5")),
            Ok(Amount(2_500_000))
        );
    }

    #[test]
    fn amount_to_decimal_round_trips_and_reports_out_of_range() {
        for text in ["0", "0.0014", "-12.345678", "1000000"] {
            assert_eq!(usd(text).to_decimal(), Ok(dec(text)));
        }
        assert_eq!(
            Amount(i128::MAX).to_decimal(),
            Err(AmountError::OutOfRange { micros: i128::MAX })
        );
    }

    #[test]
    fn amount_displays_exactly() {
        assert_eq!(Amount(1_400).to_string(), "0.0014");
        assert_eq!(Amount::from_units(5).to_string(), "5");
        assert_eq!(Amount(-3_500_000).to_string(), "-3.5");
        assert_eq!(Amount(-1).to_string(), "-0.000001");
    }

    #[test]
    fn round_to_minor_is_half_to_even() {
        let r = |s: &str, e: u32| usd(s).round_to_minor(e).to_string();
        assert_eq!(r("0.125", 2), "0.12");
        assert_eq!(r("0.135", 2), "0.14");
        assert_eq!(r("0.126", 2), "0.13");
        assert_eq!(r("0.124999", 2), "0.12");
        assert_eq!(r("-0.125", 2), "-0.12");
        assert_eq!(r("-0.135", 2), "-0.14");
        assert_eq!(r("-0.126", 2), "-0.13");
        assert_eq!(r("2.5", 0), "2");
        assert_eq!(r("3.5", 0), "4");
        assert_eq!(r("0.0014", 3), "0.001");
        assert_eq!(r("0.0015", 3), "0.002");
        assert_eq!(r("0.0025", 3), "0.002");
        assert_eq!(r("0.000001", 6), "0.000001");
        assert_eq!(r("0.000001", 9), "0.000001");
        assert_eq!(r("7", 2), "7");
    }

    // Accounts

    #[test]
    fn create_account_is_idempotent() {
        let mut ledger = setup();
        let again = account("w", USD, wallet("0", Some("10")));
        assert_eq!(ledger.create_account(&again), Ok(Status::Exists));
        let other = account("w", USD, wallet("-1", Some("10")));
        assert_eq!(
            ledger.create_account(&other),
            Err(LedgerError::AccountExistsWithDifferentContent { id: "w".into() })
        );
        let other = account("w", "EUR", wallet("0", Some("10")));
        assert!(ledger.create_account(&other).is_err());
        assert_eq!(ledger.accounts().len(), 6);
    }

    #[test]
    fn create_account_validates() {
        let mut ledger = Ledger::new();
        assert_eq!(
            ledger.create_account(&account("", USD, AccountKind::Revenue)),
            Err(LedgerError::InvalidId { id: String::new() })
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            ledger.create_account(&account(&long, USD, AccountKind::Revenue)),
            Err(LedgerError::InvalidId { .. })
        ));
        for bad in ["usd", "US", "USDT", "U$D"] {
            assert_eq!(
                ledger.create_account(&account("a", bad, AccountKind::Revenue)),
                Err(LedgerError::InvalidCurrency {
                    currency: bad.into()
                })
            );
        }
        assert_eq!(
            ledger.create_account(&account("a", USD, wallet("0.01", None))),
            Err(LedgerError::InvalidFloor { floor: usd("0.01") })
        );
        assert_eq!(ledger, Ledger::new());
    }

    // Posted transfers

    #[test]
    fn top_up_posts_funding_to_wallet() {
        let ledger = setup();
        assert_eq!(balance(&ledger, "w"), bal("100", "0", "100"));
        assert_eq!(balance(&ledger, "funding"), bal("-100", "0", "-100"));
        let w = ledger.account("w").unwrap().counters;
        assert_eq!(w.credits_posted, usd("100"));
        assert_eq!(w.debits_posted, Amount::ZERO);
        assert_balanced(&ledger);
        let history: Vec<_> = ledger
            .history("w")
            .unwrap()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(history, ["topup:1"]);
    }

    #[test]
    fn retry_with_same_content_exists_and_changes_nothing() {
        let mut ledger = setup();
        let before = ledger.clone();
        let applied = ledger
            .apply(&post("topup:1", "funding", "w", "100"))
            .unwrap();
        assert_eq!(applied.status, Status::Exists);
        assert_eq!(applied.transfer.amount, usd("100"));
        assert_eq!(ledger, before);
    }

    #[test]
    fn retry_with_different_content_is_refused() {
        let mut ledger = setup();
        for request in [
            post("topup:1", "funding", "w", "100.000001"),
            post("topup:1", "funding", "credit", "100"),
            hold("topup:1", "w", "100", 10),
            release("topup:1", "x"),
        ] {
            assert_eq!(
                refused(&mut ledger, &request),
                LedgerError::ExistsWithDifferentContent {
                    id: "topup:1".into()
                }
            );
        }
    }

    #[test]
    fn transfers_validate_ids_amounts_accounts_and_currency() {
        let mut ledger = setup();
        assert_eq!(
            refused(&mut ledger, &post("", "funding", "w", "1")),
            LedgerError::InvalidId { id: String::new() }
        );
        assert_eq!(
            refused(&mut ledger, &post("expire:x", "funding", "w", "1")),
            LedgerError::InvalidId {
                id: "expire:x".into()
            }
        );
        assert_eq!(
            refused(&mut ledger, &post("t", "funding", "w", "0")),
            LedgerError::NonPositiveAmount {
                amount: Amount::ZERO
            }
        );
        assert_eq!(
            refused(&mut ledger, &post("t", "funding", "w", "-1")),
            LedgerError::NonPositiveAmount { amount: usd("-1") }
        );
        assert_eq!(
            refused(&mut ledger, &post("t", "funding", "nobody", "1")),
            LedgerError::UnknownAccount {
                id: "nobody".into()
            }
        );
        assert_eq!(
            refused(&mut ledger, &post("t", "w", "w", "1")),
            LedgerError::SameAccount { id: "w".into() }
        );
        assert_eq!(
            refused(&mut ledger, &post("t", "eur-funding", "w", "1")),
            LedgerError::CurrencyMismatch {
                debit: "EUR".into(),
                credit: USD.into()
            }
        );
    }

    #[test]
    fn counters_cannot_overflow() {
        let mut ledger = setup();
        let max = Request::Post {
            id: "big".into(),
            debit_account: "funding".into(),
            credit_account: "credit".into(),
            // funding already paid the 100 of topup:1
            amount: Amount(Amount::MAX_COUNTER.0 - usd("100").0),
        };
        assert!(ledger.apply(&max).is_ok());
        let error = refused(&mut ledger, &post("more", "funding", "credit", "1"));
        assert_eq!(
            error,
            LedgerError::Overflow {
                account: "funding".into()
            }
        );
        assert!(error.is_transient());
    }

    // Holds

    #[test]
    fn hold_reserves_funds() {
        let mut ledger = setup();
        let applied = ledger.apply(&hold("hold:a", "w", "30", 100)).unwrap();
        assert_eq!(applied.status, Status::Created);
        assert_eq!(
            applied.transfer.kind,
            TransferKind::Pending { timeout: 100 }
        );
        assert_eq!(balance(&ledger, "w"), bal("100", "-30", "70"));
        assert_eq!(balance(&ledger, "revenue"), bal("0", "30", "0"));
        let holds: Vec<_> = ledger
            .pending_holds("w")
            .unwrap()
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(holds, ["hold:a"]);
        assert_eq!(ledger.pending_holds("revenue").unwrap().len(), 1);
        assert_eq!(ledger.resolution("hold:a"), None);
        assert_balanced(&ledger);
    }

    #[test]
    fn hold_beyond_the_balance_is_refused_with_402_data() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "70", 100)).unwrap();
        let error = refused(&mut ledger, &hold("hold:b", "w", "30.000001", 100));
        assert_eq!(
            error,
            LedgerError::InsufficientFunds {
                account: "w".into(),
                available: usd("30"),
                required: usd("30.000001"),
            }
        );
        assert!(error.is_transient());
        // Exactly the balance is fine: the wallet may reach its floor.
        ledger.apply(&hold("hold:b", "w", "30", 100)).unwrap();
        assert_eq!(ledger.balance("w").unwrap().available, Amount::ZERO);
    }

    #[test]
    fn refused_hold_succeeds_when_retried_after_a_top_up() {
        let mut ledger = setup();
        let big = hold("hold:a", "w", "150", 100);
        refused(&mut ledger, &big);
        ledger
            .apply(&post("topup:2", "funding", "w", "50"))
            .unwrap();
        assert_eq!(ledger.apply(&big).unwrap().status, Status::Created);
    }

    #[test]
    fn credit_line_wallet_goes_down_to_its_floor() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "credit", "50", 100)).unwrap();
        assert_eq!(balance(&ledger, "credit"), bal("0", "-50", "-50"));
        assert_eq!(
            refused(&mut ledger, &hold("hold:b", "credit", "0.000001", 100)),
            LedgerError::InsufficientFunds {
                account: "credit".into(),
                available: Amount::ZERO,
                required: Amount(1),
            }
        );
        // A posted debit obeys the same rule.
        assert!(matches!(
            refused(&mut ledger, &post("x", "credit", "revenue", "1")),
            LedgerError::InsufficientFunds { .. }
        ));
    }

    // Captures

    #[test]
    fn full_capture_posts_the_hold() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "30", 100)).unwrap();
        let applied = ledger.apply(&capture("capture:a", "hold:a", "30")).unwrap();
        assert_eq!(
            applied.transfer.kind,
            TransferKind::PostPending {
                pending_id: "hold:a".into(),
                released: Amount::ZERO
            }
        );
        assert_eq!(applied.transfer.debit_account, AccountId::from("w"));
        assert_eq!(applied.transfer.credit_account, AccountId::from("revenue"));
        assert_eq!(balance(&ledger, "w"), bal("70", "0", "70"));
        assert_eq!(balance(&ledger, "revenue"), bal("30", "0", "30"));
        assert_eq!(
            ledger.resolution("hold:a"),
            Some(&Resolution::Posted {
                by: "capture:a".into(),
                amount: usd("30")
            })
        );
        assert!(ledger.pending_holds("w").unwrap().is_empty());
        assert_balanced(&ledger);
    }

    #[test]
    fn partial_capture_releases_the_rest() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "0.05", 100)).unwrap();
        let applied = ledger
            .apply(&capture("capture:a", "hold:a", "0.0168"))
            .unwrap();
        assert_eq!(
            applied.transfer.kind,
            TransferKind::PostPending {
                pending_id: "hold:a".into(),
                released: usd("0.0332")
            }
        );
        assert_eq!(balance(&ledger, "w"), bal("99.9832", "0", "99.9832"));
        assert_eq!(balance(&ledger, "revenue"), bal("0.0168", "0", "0.0168"));
        assert_balanced(&ledger);
    }

    #[test]
    fn capture_above_the_hold_is_refused() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "1", 100)).unwrap();
        let error = refused(&mut ledger, &capture("capture:a", "hold:a", "1.000001"));
        assert_eq!(
            error,
            LedgerError::ExceedsPending {
                pending_id: "hold:a".into(),
                pending: usd("1"),
                requested: usd("1.000001")
            }
        );
        assert!(!error.is_transient());
        assert!(matches!(
            refused(&mut ledger, &capture("capture:a", "hold:a", "0")),
            LedgerError::NonPositiveAmount { .. }
        ));
    }

    #[test]
    fn capture_of_unknown_or_non_pending_transfer_is_refused() {
        let mut ledger = setup();
        assert_eq!(
            refused(&mut ledger, &capture("capture:a", "hold:a", "1")),
            LedgerError::UnknownTransfer {
                id: "hold:a".into()
            }
        );
        assert_eq!(
            refused(&mut ledger, &capture("capture:a", "topup:1", "1")),
            LedgerError::NotPending {
                id: "topup:1".into()
            }
        );
        assert_eq!(
            refused(&mut ledger, &release("release:a", "topup:1")),
            LedgerError::NotPending {
                id: "topup:1".into()
            }
        );
    }

    #[test]
    fn a_hold_is_resolved_at_most_once() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "1", 100)).unwrap();
        ledger
            .apply(&capture("capture:a", "hold:a", "0.5"))
            .unwrap();
        let posted = LedgerError::AlreadyResolved {
            pending_id: "hold:a".into(),
            resolution: Resolution::Posted {
                by: "capture:a".into(),
                amount: usd("0.5"),
            },
        };
        assert_eq!(
            refused(&mut ledger, &capture("capture:b", "hold:a", "0.5")),
            posted
        );
        assert_eq!(
            refused(&mut ledger, &release("release:a", "hold:a")),
            posted
        );
        assert!(!posted.is_transient());
        // The capture itself, retried, still answers Exists.
        assert_eq!(
            ledger
                .apply(&capture("capture:a", "hold:a", "0.5"))
                .unwrap()
                .status,
            Status::Exists
        );
    }

    // Releases

    #[test]
    fn release_voids_the_whole_hold() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "30", 100)).unwrap();
        let applied = ledger.apply(&release("release:a", "hold:a")).unwrap();
        assert_eq!(applied.transfer.amount, usd("30"));
        assert_eq!(
            applied.transfer.kind,
            TransferKind::VoidPending {
                pending_id: "hold:a".into()
            }
        );
        assert_eq!(balance(&ledger, "w"), bal("100", "0", "100"));
        assert_eq!(balance(&ledger, "revenue"), bal("0", "0", "0"));
        assert_eq!(
            refused(&mut ledger, &capture("capture:a", "hold:a", "1")),
            LedgerError::AlreadyResolved {
                pending_id: "hold:a".into(),
                resolution: Resolution::Voided {
                    by: "release:a".into()
                }
            }
        );
        let history: Vec<_> = ledger
            .history("w")
            .unwrap()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(history, ["topup:1", "hold:a", "release:a"]);
        assert_balanced(&ledger);
    }

    // Expiry

    #[test]
    fn expire_voids_holds_whose_timeout_has_passed() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "10", 200)).unwrap();
        ledger.apply(&hold("hold:b", "w", "20", 100)).unwrap();
        ledger.apply(&hold("hold:c", "w", "30", 300)).unwrap();
        assert!(ledger.expire(99).is_empty());
        let done = ledger.expire(200);
        let ids: Vec<_> = done.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["expire:hold:b", "expire:hold:a"]);
        assert_eq!(
            done[0].kind,
            TransferKind::Expired {
                pending_id: "hold:b".into(),
                at: 100
            }
        );
        assert_eq!(done[0].amount, usd("20"));
        assert_eq!(balance(&ledger, "w"), bal("100", "-30", "70"));
        assert_eq!(
            ledger.resolution("hold:a"),
            Some(&Resolution::Expired {
                by: "expire:hold:a".into(),
                at: 200
            })
        );
        assert_eq!(
            refused(&mut ledger, &capture("capture:a", "hold:a", "1")),
            LedgerError::AlreadyResolved {
                pending_id: "hold:a".into(),
                resolution: Resolution::Expired {
                    by: "expire:hold:a".into(),
                    at: 200
                }
            }
        );
        assert_eq!(ledger.expired_through(), Some(200));
        assert_balanced(&ledger);
    }

    #[test]
    fn expire_again_or_earlier_changes_nothing() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "10", 100)).unwrap();
        ledger.apply(&hold("hold:b", "w", "10", 300)).unwrap();
        assert_eq!(ledger.expire(200).len(), 1);
        let before = ledger.clone();
        assert!(ledger.expire(200).is_empty());
        assert!(ledger.expire(50).is_empty());
        assert_eq!(ledger, before);
    }

    #[test]
    fn hold_that_would_already_be_expired_is_refused() {
        let mut ledger = setup();
        ledger.expire(1_000);
        let error = refused(&mut ledger, &hold("hold:a", "w", "1", 1_000));
        assert_eq!(
            error,
            LedgerError::TimeoutPassed {
                timeout: 1_000,
                expired_through: 1_000
            }
        );
        assert!(!error.is_transient());
        ledger.apply(&hold("hold:a", "w", "1", 1_001)).unwrap();
    }

    // Reversals

    #[test]
    fn refund_after_capture_goes_back_from_revenue() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "1", 100)).unwrap();
        ledger
            .apply(&capture("capture:a", "hold:a", "0.8"))
            .unwrap();
        let applied = ledger
            .apply(&reverse("refund:a", "capture:a", "0.3"))
            .unwrap();
        assert_eq!(applied.transfer.debit_account, AccountId::from("revenue"));
        assert_eq!(applied.transfer.credit_account, AccountId::from("w"));
        assert_eq!(
            applied.transfer.kind,
            TransferKind::Reversal {
                of: "capture:a".into()
            }
        );
        assert_eq!(balance(&ledger, "w"), bal("99.5", "0", "99.5"));
        assert_eq!(balance(&ledger, "revenue"), bal("0.5", "0", "0.5"));
        assert_eq!(ledger.reversible("capture:a"), Some(usd("0.5")));
        assert_eq!(
            refused(&mut ledger, &reverse("refund:b", "capture:a", "0.500001")),
            LedgerError::ExceedsReversible {
                of: "capture:a".into(),
                remaining: usd("0.5"),
                requested: usd("0.500001")
            }
        );
        ledger
            .apply(&reverse("refund:b", "capture:a", "0.5"))
            .unwrap();
        assert_eq!(ledger.reversible("capture:a"), Some(Amount::ZERO));
        assert_balanced(&ledger);
    }

    #[test]
    fn only_posted_transfers_can_be_reversed() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "1", 100)).unwrap();
        ledger.apply(&hold("hold:b", "w", "1", 100)).unwrap();
        ledger.apply(&release("release:b", "hold:b")).unwrap();
        ledger.apply(&reverse("refund:t", "topup:1", "1")).unwrap();
        for of in ["hold:a", "release:b", "refund:t"] {
            assert_eq!(
                refused(&mut ledger, &reverse("r", of, "0.1")),
                LedgerError::NotReversible { id: of.into() }
            );
        }
        assert_eq!(
            refused(&mut ledger, &reverse("r", "nothing", "0.1")),
            LedgerError::UnknownTransfer {
                id: "nothing".into()
            }
        );
        assert_eq!(ledger.reversible("hold:a"), None);
    }

    #[test]
    fn reversing_a_top_up_obeys_the_wallet_floor() {
        let mut ledger = setup();
        ledger.apply(&hold("hold:a", "w", "60", 100)).unwrap();
        assert_eq!(
            refused(&mut ledger, &reverse("chargeback:1", "topup:1", "50")),
            LedgerError::InsufficientFunds {
                account: "w".into(),
                available: usd("40"),
                required: usd("50")
            }
        );
        ledger
            .apply(&reverse("chargeback:1", "topup:1", "40"))
            .unwrap();
        assert_eq!(balance(&ledger, "funding"), bal("-60", "0", "-60"));
    }

    // Low-balance signal

    #[test]
    fn low_balance_is_signalled_once_per_crossing() {
        let mut ledger = setup(); // w: 100, threshold 10
        let crossed = |ledger: &mut Ledger, request: &Request| {
            ledger.apply(request).unwrap().crossed_low_balance
        };
        assert!(!crossed(&mut ledger, &hold("h1", "w", "90", 100))); // 10: not below
        assert!(crossed(&mut ledger, &hold("h2", "w", "0.000001", 100))); // below
        assert!(!crossed(&mut ledger, &hold("h3", "w", "1", 100))); // still below
        assert!(!crossed(&mut ledger, &hold("h3", "w", "1", 100))); // a retry
        assert!(!crossed(&mut ledger, &release("r1", "h1"))); // back above
        assert!(!crossed(&mut ledger, &capture("c2", "h2", "0.000001")));
        assert!(crossed(&mut ledger, &hold("h4", "w", "89", 100))); // below again
                                                                    // Other accounts never signal.
        assert!(!crossed(&mut ledger, &hold("h5", "credit", "10", 100)));
        assert!(!crossed(&mut ledger, &post("t", "funding", "credit", "1")));
    }

    // Free-service gate (minimum balance)

    #[test]
    fn free_service_requires_the_minimum_balance() {
        let mut ledger = setup();
        let five = Some(usd("5"));
        assert!(may_use_free_service(&ledger.balance("w").unwrap(), five));
        ledger.apply(&hold("hold:a", "w", "95", 100)).unwrap();
        assert!(may_use_free_service(&ledger.balance("w").unwrap(), five));
        ledger.apply(&hold("hold:b", "w", "0.01", 100)).unwrap();
        assert!(!may_use_free_service(&ledger.balance("w").unwrap(), five));
        assert!(may_use_free_service(&ledger.balance("w").unwrap(), None));
    }

    // Queries

    #[test]
    fn queries_on_unknown_accounts_are_errors() {
        let ledger = setup();
        let unknown = LedgerError::UnknownAccount { id: "x".into() };
        assert_eq!(ledger.balance("x"), Err(unknown.clone()));
        assert!(ledger.history("x").is_err());
        assert_eq!(ledger.pending_holds("x"), Err(unknown));
        assert_eq!(ledger.account("x"), None);
        assert_eq!(ledger.transfer("x"), None);
        assert_eq!(ledger.totals("JPY"), Counters::default());
    }

    #[test]
    fn totals_balance_per_currency() {
        let mut ledger = setup();
        ledger
            .apply(&post("topup:e", "eur-funding", "eur-wallet", "7"))
            .unwrap();
        ledger.apply(&hold("hold:a", "w", "3", 100)).unwrap();
        let usd_totals = ledger.totals(USD);
        assert_eq!(usd_totals.debits_posted, usd("100"));
        assert_eq!(usd_totals.credits_pending, usd("3"));
        assert_eq!(ledger.totals("EUR").credits_posted, usd("7"));
        assert_balanced(&ledger);
    }

    #[test]
    fn errors_display() {
        let error = LedgerError::InsufficientFunds {
            account: "w".into(),
            available: usd("1.5"),
            required: usd("2"),
        };
        assert_eq!(
            error.to_string(),
            "insufficient funds in w: 1.5 available, 2 required"
        );
    }
}
