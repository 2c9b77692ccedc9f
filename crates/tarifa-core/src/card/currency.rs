//! Currencies as cards write them (`$US`, `€`, `Rp`, Meta's `GBD` typo …) and
//! [`CurrencyCheck`], which holds a file to one currency across its title and its cells (RC-3,
//! RC-4).

/// Meta's 16 billing currencies (RC-2) and other ISO 4217 codes a price list may use. Used to
/// find the code in a title and to tell a typo from a contradiction in tier files.
pub(super) const KNOWN_CURRENCIES: &[&str] = &[
    "USD", "AED", "ARS", "AUD", "BRL", "CLP", "COP", "EUR", "GBP", "IDR", "INR", "MXN", "MYR",
    "PEN", "SAR", "SGD", "BDT", "BHD", "BOB", "CAD", "CHF", "CNY", "CRC", "CZK", "DKK", "DOP",
    "EGP", "GHS", "GTQ", "HKD", "HUF", "ILS", "IQD", "JOD", "JPY", "KES", "KRW", "KWD", "KZT",
    "LKR", "MAD", "NGN", "NOK", "NPR", "NZD", "OMR", "PAB", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RUB", "SEK", "THB", "TND", "TRY", "TWD", "UAH", "UYU", "VES", "VND", "ZAR",
];

/// Currencies written with a bare `$` sign.
const DOLLAR_CURRENCIES: &[&str] = &["USD", "AUD", "MXN", "ARS", "CLP", "COP", "SGD"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CurrencyToken {
    Iso(String),
    /// A bare `$`: one of [`DOLLAR_CURRENCIES`].
    Dollar,
}

/// Reads a currency cell (`$US`, `USD`, `€`, `£`, `₹`, `Rp`, `A$`, …).
pub(super) fn currency_token(token: &str) -> Option<CurrencyToken> {
    let t: String = token.chars().filter(|c| !c.is_whitespace()).collect();
    let upper = t.to_uppercase();
    let iso = match upper.as_str() {
        "$" => return Some(CurrencyToken::Dollar),
        "$US" | "US$" | "U$S" | "USD$" => "USD",
        "€" => "EUR",
        "£" => "GBP",
        // Meta typo seen in a GBP volume-tiers CSV (R6 `tier_loader.py`); tolerated everywhere.
        "GBD" => "GBP",
        "₹" => "INR",
        "RP" | "RP." => "IDR",
        "A$" | "AU$" => "AUD",
        "R$" => "BRL",
        "MX$" | "MEX$" => "MXN",
        "S/" | "S/." => "PEN",
        "RM" => "MYR",
        "S$" => "SGD",
        "AR$" => "ARS",
        "CLP$" => "CLP",
        "COL$" => "COP",
        "د.إ" => "AED",
        "ر.س" => "SAR",
        s if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) => s,
        _ => return None,
    };
    Some(CurrencyToken::Iso(iso.to_owned()))
}

/// Reconciles the currency cells of a file with its title (RC-3): the title's ISO code is
/// authoritative and a cell that contradicts it is an error; without one, the first cell decides
/// and later cells must agree.
pub(super) struct CurrencyCheck {
    pub(super) known: Option<String>,
    from_title: bool,
    /// Tier files: when the title gives the currency, a cell that is not a recognisable currency
    /// (a typo other than the known `GBD`) is ignored — the title wins (RC-4).
    tolerant: bool,
}

impl CurrencyCheck {
    pub(super) fn new(title: Option<String>, tolerant: bool) -> CurrencyCheck {
        CurrencyCheck {
            from_title: title.is_some(),
            known: title,
            tolerant,
        }
    }

    pub(super) fn check(&mut self, cell: &str) -> Result<(), String> {
        if cell.is_empty() {
            return Ok(());
        }
        let tolerate = self.tolerant && self.from_title;
        let whose = if self.from_title {
            "the title's"
        } else {
            "the earlier rows'"
        };
        match (currency_token(cell), &self.known) {
            (None, _) if tolerate => Ok(()),
            (None, _) => Err(format!("unrecognised currency {cell:?}")),
            (Some(CurrencyToken::Dollar), Some(k)) if DOLLAR_CURRENCIES.contains(&k.as_str()) => {
                Ok(())
            }
            (Some(CurrencyToken::Dollar), Some(k)) => {
                Err(format!("currency {cell:?} contradicts {whose} {k}"))
            }
            (Some(CurrencyToken::Dollar), None) => Err(format!(
                "currency {cell:?} is ambiguous and the title has no ISO code"
            )),
            (Some(CurrencyToken::Iso(c)), Some(k)) if &c == k => Ok(()),
            (Some(CurrencyToken::Iso(c)), Some(_))
                if tolerate && !KNOWN_CURRENCIES.contains(&c.as_str()) =>
            {
                Ok(())
            }
            (Some(CurrencyToken::Iso(c)), Some(k)) => {
                Err(format!("currency {cell:?} ({c}) contradicts {whose} {k}"))
            }
            (Some(CurrencyToken::Iso(c)), None) => {
                self.known = Some(c);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::card::tests::*;

    /// RC-3: currency tokens; the title's ISO code wins, a contradicting token is an error.
    #[test]
    fn rc3_currency_tokens() {
        // `$US` with no ISO code in the title: derived from the token.
        let card = card_with("Rates, effective 2022-02-01", "Brazil,$US,0.05,0.03").unwrap();
        assert_eq!(card.currency, "USD");
        for (title, token, iso) in [
            ("Rates, effective 2026-07-01", "€", "EUR"),
            ("Rates, effective 2026-07-01", "£", "GBP"),
            ("Rates, effective 2026-07-01", "₹", "INR"),
            ("Rates, effective 2026-07-01", "Rp", "IDR"),
            ("Rates, effective 2026-07-01", "A$", "AUD"),
            ("Rates in AUD, effective 2026-07-01", "$", "AUD"),
            ("Rates in GBP, effective 2026-07-01", "GBD", "GBP"),
        ] {
            let card = card_with(title, &format!("Brazil,{token},0.05,0.03")).unwrap();
            assert_eq!(card.currency, iso, "{token}");
        }
        // Contradiction with the title, with its line.
        let e = card_with(
            "Cost per message in EUR, effective July 1, 2026",
            "Brazil,EUR,0.05,0.03\nIndia,$US,0.01,0.001",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("contradicts"), "{e}");
        // Contradiction between rows when the title has no code.
        let e = card_with(
            "Rates, effective 2026-07-01",
            "Brazil,€,0.05,0.03\nIndia,£,0.01,0.001",
        )
        .unwrap_err();
        assert_eq!(e.line, 4);
        // A bare `$` cannot name the currency alone.
        assert!(card_with("Rates, effective 2026-07-01", "Brazil,$,0.05,0.03").is_err());
        // No code anywhere.
        let e = card_with("Rates, effective 2026-07-01", "Brazil,,0.05,0.03").unwrap_err();
        assert!(e.message.contains("no currency"), "{e}");
    }
}
