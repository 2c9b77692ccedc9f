//! The domain's one error type: why the book refused an operation a caller asked for (a top-up, a
//! quote, a reservation). Each says what was wrong in words a caller can show; the API layer
//! turns them into 4xx answers.

use std::fmt;
use tarifa_core::engine::LiveError;
use tarifa_core::ledger::LedgerError;

#[derive(Clone, Debug, PartialEq)]
pub enum DomainError {
    /// The business is not in the rating config.
    UnknownBusiness(String),
    /// The business has no wallet (it is not in the config).
    NoWallet(String),
    /// A field of the request is not acceptable: what and why.
    Invalid(String),
    /// The planned message could not be priced.
    NotRated(LiveError),
    /// The ledger refused the operation (nothing was applied).
    Ledger(LedgerError),
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::UnknownBusiness(b) => write!(f, "business {b:?} is not in the config"),
            DomainError::NoWallet(b) => write!(f, "business {b:?} has no wallet"),
            DomainError::Invalid(message) => f.write_str(message),
            DomainError::NotRated(e) => {
                write!(f, "the planned message could not be rated: {e}")
            }
            DomainError::Ledger(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DomainError {}

impl From<LedgerError> for DomainError {
    fn from(e: LedgerError) -> DomainError {
        DomainError::Ledger(e)
    }
}
