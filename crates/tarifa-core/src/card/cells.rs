//! What one cell of a card says: header keys, note and `n/a` spellings, open-ended `To`s,
//! message counts with thousands separators, amounts with currency symbols (exact
//! [`Decimal`]s), and percentages. Shared by both parsers so that both read cells alike.

use super::currency::currency_token;
use rust_decimal::Decimal;

/// Lower-case alphanumerics of a header cell, without a parenthesised remark:
/// `"Market\n(per rate card)"` → `"market"`, `"Authentication-\nInternational"` →
/// `"authenticationinternational"`, `"vs. List rate"` → `"vslistrate"`.
pub(super) fn header_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => {}
        }
    }
    out
}

pub(super) fn is_market_header(cell: &str) -> bool {
    matches!(header_key(cell).as_str(), "market" | "markets" | "country")
}

/// Note rows: `Note…`, `Notes:`, footnotes marked `*` or `†`.
pub(super) fn is_note(cell: &str) -> bool {
    cell.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("note"))
        || cell.starts_with('*')
        || cell.starts_with('†')
}

/// Cells meaning "no value".
pub(super) fn is_na(t: &str) -> bool {
    t.is_empty()
        || ["n/a", "na", "n.a.", "-", "--", "–", "—", "none"]
            .iter()
            .any(|s| t.eq_ignore_ascii_case(s))
}

/// Cells meaning "no upper bound" in a band's `To`.
pub(super) fn is_open_end(t: &str) -> bool {
    is_na(t)
        || [
            "∞",
            "+",
            "+∞",
            "and above",
            "and more",
            "or more",
            "above",
            "no limit",
            "unlimited",
        ]
        .iter()
        .any(|s| t.eq_ignore_ascii_case(s))
}

/// A message count, with optional thousands separators (`1,000,001`, `1 000 001`).
pub(super) fn parse_count(t: &str) -> Option<u64> {
    let digits: String = t
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, ',' | '_' | '\'' | '’')))
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A rate cell: `n/a`-like → `None`; otherwise a non-negative decimal, optionally preceded by a
/// currency symbol (`$0.0411`, `₹ 0.1150`, `Rp 1,169.20`) and with `,` thousands separators.
/// Parsed exactly.
/// Also returns the symbol (`""` if none), for the caller to check against the card's currency.
pub(super) fn parse_amount(cell: &str) -> Result<(Option<Decimal>, &str), String> {
    let t = cell.trim();
    if is_na(t) {
        return Ok((None, ""));
    }
    let start = t
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .ok_or_else(|| format!("{t:?} is not a number"))?;
    let prefix = t[..start].trim();
    if prefix.contains(['-', '−']) {
        return Err(format!("negative rate {t:?}"));
    }
    if !prefix.is_empty() && currency_token(prefix).is_none() {
        return Err(format!("{t:?} is not a number"));
    }
    let body: String = t[start..].chars().filter(|c| !c.is_whitespace()).collect();
    let body = strip_thousands(&body).ok_or_else(|| format!("{t:?} is not a number"))?;
    Decimal::from_str_exact(&body)
        .map(|d| (Some(d), prefix))
        .map_err(|_| format!("{t:?} is not a number"))
}

/// Removes `,` thousands separators if they are well placed (`1,169.20`); `None` otherwise
/// (`0,0411` is rejected rather than guessed).
fn strip_thousands(body: &str) -> Option<String> {
    if !body.contains(',') {
        return Some(body.to_owned());
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.contains(',') {
        return None;
    }
    let mut groups = int.split(',');
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut out = first.to_owned();
    for g in groups {
        if g.len() != 3 {
            return None;
        }
        out.push_str(g);
    }
    if !frac.is_empty() || body.contains('.') {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

/// `0%`, `-5%`, `−5 %` (Unicode minus), `-5` → `Some(-0.05)` etc.; blank/`n/a` → `None`.
/// The number is always read as a percentage.
pub(super) fn parse_percent(cell: &str) -> Result<Option<Decimal>, String> {
    let t = cell.trim();
    if is_na(t) {
        return Ok(None);
    }
    let s: String = t
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '−' | '–' | '‒' | '—' | '﹣' | '－' => '-',
            c => c,
        })
        .collect();
    let s = s.strip_suffix('%').unwrap_or(&s);
    let s = s.strip_prefix('+').unwrap_or(s);
    let pct =
        Decimal::from_str_exact(s).map_err(|_| format!("discount {t:?} is not a percentage"))?;
    pct.checked_div(Decimal::ONE_HUNDRED)
        .map(|d| Some(d.normalize()))
        .ok_or_else(|| format!("discount {t:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use crate::card::tests::*;
    use crate::card::RateColumn;

    /// RC-3: values are exact decimals; n/a spellings; symbols and separators.
    #[test]
    fn rc3_values() {
        let card = card_with(
            "Rates in IDR, effective 2022-02-01",
            "Germany,Rp,\"Rp 1,948.66\", 1169.20 \nBrazil,IDR,n/a,NA\nIndia,IDR,-,\nMexico,IDR,—,N/A",
        )
        .unwrap();
        assert_eq!(
            card.rate(m("Germany"), RateColumn::Marketing),
            Some(d("1948.66"))
        );
        assert_eq!(
            card.rate(m("Germany"), RateColumn::Utility),
            Some(d("1169.20"))
        );
        for name in ["Brazil", "India", "Mexico"] {
            assert_eq!(card.rate(m(name), RateColumn::Marketing), None);
            assert_eq!(card.rate(m(name), RateColumn::Utility), None);
        }
        // The exact decimal, not a float round-trip.
        let card = card_with(
            "Rates in USD, effective 2022-02-01",
            "Brazil,USD,$0.1,0.0000001",
        )
        .unwrap();
        assert_eq!(
            card.rate(m("Brazil"), RateColumn::Marketing)
                .unwrap()
                .to_string(),
            "0.1"
        );
        assert_eq!(
            card.rate(m("Brazil"), RateColumn::Utility),
            Some(d("0.0000001"))
        );
        for bad in ["abc", "0,0411", "-0.01", "1.2.3", "EUR 0.1"] {
            let e = card_with(
                "Rates in USD, effective 2022-02-01",
                &format!("Brazil,USD,\"{bad}\",1"),
            )
            .unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.contains("Marketing for Brazil"), "{e}");
        }
    }
}
