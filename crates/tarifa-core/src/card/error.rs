//! [`CardError`]: the one error of every card parser and of the book, saying which file and
//! which line to look at.

use std::fmt;

/// A rate-card file that cannot be used, with the place to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardError {
    /// The file name or label given to the parser.
    pub source: String,
    /// 1-based CSV line (the first physical line of a multi-line record); 0 for the whole file.
    pub line: usize,
    pub message: String,
}

impl CardError {
    pub fn new(source: &str, line: usize, message: impl Into<String>) -> CardError {
        CardError {
            source: source.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

impl std::error::Error for CardError {}
