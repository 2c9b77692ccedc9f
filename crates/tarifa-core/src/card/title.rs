//! The title row of a card (`Cost per conversation in USD, effective June 1, 2023`): the
//! effective date in Meta's several spellings and the ISO currency, when the title gives them.

use super::currency::{currency_token, CurrencyToken, KNOWN_CURRENCIES};
use crate::time::LocalDate;

#[derive(Default)]
pub(super) struct Title {
    pub(super) currency: Option<String>,
    pub(super) effective: Option<LocalDate>,
}

/// Reads `Cost per conversation in USD, effective June 1, 2023` and the variants `effective
/// 1 July 2026`, `effective 2026-07-01`, `effective from …`. A title that says "effective" but
/// whose date cannot be read is an error.
pub(super) fn parse_title(text: &str) -> Result<Title, String> {
    let lower = text.to_ascii_lowercase();
    let effective = match lower.find("effective") {
        Some(p) => Some(
            parse_title_date(&text[p + "effective".len()..])
                .ok_or_else(|| format!("cannot read the effective date in the title {text:?}"))?,
        ),
        None => None,
    };
    Ok(Title {
        currency: title_currency(text),
        effective,
    })
}

fn parse_title_date(rest: &str) -> Option<LocalDate> {
    let tokens: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '(' | ')' | ';')))
        .filter(|t| !t.is_empty())
        .skip_while(|t| {
            ["from", "as", "of", "on", "date"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
        })
        .take(3)
        .collect();
    let first = *tokens.first()?;
    if let Some(d) = LocalDate::parse(first) {
        return Some(d);
    }
    let [a, b, c] = tokens[..] else {
        return None;
    };
    let year: i32 = c.parse().ok()?;
    if let Some(month) = month_number(a) {
        LocalDate::from_ymd(year, month, day_number(b)?)
    } else {
        LocalDate::from_ymd(year, month_number(b)?, day_number(a)?)
    }
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let w = word.to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&w))
        .map(|i| i as u32 + 1)
}

/// `1`, `01`, `1st`, `22nd`.
fn day_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.parse().ok()
}

/// The ISO code of a title: the currency after "in" (`… in USD, …`, `… in $US …`), else any
/// known ISO code written in capitals.
fn title_currency(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | ':' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if pair[0].eq_ignore_ascii_case("in") {
            if let Some(CurrencyToken::Iso(c)) = currency_token(pair[1]) {
                if KNOWN_CURRENCIES.contains(&c.as_str()) {
                    return Some(c);
                }
            }
        }
    }
    words
        .iter()
        .find(|w| w.len() == 3 && KNOWN_CURRENCIES.contains(w))
        .map(|w| (*w).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;
    use crate::card::RateCard;

    /// RC-3: title variants and the date/currency read from them.
    #[test]
    fn rc3_title_date_formats() {
        let cases = [
            (
                "Cost per conversation in USD, effective June 1, 2023,,,,,,",
                "USD",
                (2023, 6, 1),
            ),
            (
                "Cost per message in EUR, effective July 1, 2026",
                "EUR",
                (2026, 7, 1),
            ),
            (
                "Cost per message in EUR, effective 1 July 2026",
                "EUR",
                (2026, 7, 1),
            ),
            (
                "Cost per message in AED, effective 2026-10-01",
                "AED",
                (2026, 10, 1),
            ),
            (
                "\"Cost per message in INR, effective from Jan 1st, 2026\"",
                "INR",
                (2026, 1, 1),
            ),
            (
                "Rates in GBP (effective Sept. 30, 2024)",
                "GBP",
                (2024, 9, 30),
            ),
        ];
        for (title, cur, (y, mo, da)) in cases {
            let card = card_with(title, "Brazil,,0.0625,0.0350").unwrap();
            assert_eq!(card.currency, cur, "{title}");
            assert_eq!(card.effective, LocalDate::ymd(y, mo, da), "{title}");
        }
        // "effective" with an unreadable date is an error on the title line.
        let e = card_with("Cost per message in EUR, effective soon", "Brazil,,1,1").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("effective date"), "{e}");
        // No date anywhere: error unless the caller supplies one (RC-5).
        let text = "Cost per message in EUR\nMarket,Currency,Marketing\nBrazil,EUR,0.0518\n";
        let e = RateCard::parse_csv(text, "t.csv").unwrap_err();
        assert_eq!((e.line, e.message.contains("effective")), (0, true));
        let card =
            RateCard::parse_csv_with_effective(text, "t.csv", Some(LocalDate::ymd(2026, 7, 1)))
                .unwrap();
        assert_eq!(card.effective, LocalDate::ymd(2026, 7, 1));
    }
}
