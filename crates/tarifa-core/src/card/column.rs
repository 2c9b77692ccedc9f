//! The vocabulary of a card's header: the price columns of a rates CSV ([`RateColumn`]) and the
//! tiered categories of a tiers CSV ([`TierCategory`]), with the many ways Meta has spelled them.
//! Kept apart so the rating engine and bills can name a column without touching any parser.

use super::cells::header_key;
use std::fmt;

/// A price column of a rates CSV (RC-3). One card carries the columns of its era:
/// `Template` (era A), `BusinessInitiated`/`UserInitiated` (era B), `Marketing` … `Service`
/// (eras C and D), `MarketingLite` (MM Lite, where a card lists it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum RateColumn {
    Template,
    BusinessInitiated,
    UserInitiated,
    Marketing,
    Utility,
    Authentication,
    AuthenticationInternational,
    Service,
    MarketingLite,
}

impl RateColumn {
    pub const COUNT: usize = 9;
    pub const ALL: [RateColumn; RateColumn::COUNT] = [
        RateColumn::Template,
        RateColumn::BusinessInitiated,
        RateColumn::UserInitiated,
        RateColumn::Marketing,
        RateColumn::Utility,
        RateColumn::Authentication,
        RateColumn::AuthenticationInternational,
        RateColumn::Service,
        RateColumn::MarketingLite,
    ];

    /// Position in [`RateColumn::ALL`]; the index used by the per-market rate arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The header Meta writes for this column.
    pub const fn name(self) -> &'static str {
        match self {
            RateColumn::Template => "Template",
            RateColumn::BusinessInitiated => "Business-Initiated",
            RateColumn::UserInitiated => "User-Initiated",
            RateColumn::Marketing => "Marketing",
            RateColumn::Utility => "Utility",
            RateColumn::Authentication => "Authentication",
            RateColumn::AuthenticationInternational => "Authentication-International",
            RateColumn::Service => "Service",
            RateColumn::MarketingLite => "Marketing Lite",
        }
    }

    /// Recognises a header cell. Case, spaces, hyphens, line breaks and a parenthesised remark
    /// are ignored (`"Authentication-\nInternational"`, `"Business Initiated"`,
    /// `"Marketing (per message)"`); `Notification` is era A's name for `Template`.
    pub fn from_header(text: &str) -> Option<RateColumn> {
        let key = header_key(text);
        let mut k = key.as_str();
        for suffix in [
            "conversations",
            "conversation",
            "messages",
            "message",
            "rates",
            "rate",
        ] {
            if let Some(stripped) = k.strip_suffix(suffix) {
                if !stripped.is_empty() {
                    k = stripped;
                    break;
                }
            }
        }
        Some(match k {
            "template" | "templates" | "notification" | "notifications" | "hsm" => {
                RateColumn::Template
            }
            "businessinitiated" | "bic" | "bi" => RateColumn::BusinessInitiated,
            "userinitiated" | "uic" | "ui" => RateColumn::UserInitiated,
            "marketing" => RateColumn::Marketing,
            "utility" => RateColumn::Utility,
            "authentication" | "auth" => RateColumn::Authentication,
            "authenticationinternational"
            | "authenticationintl"
            | "authinternational"
            | "authintl" => RateColumn::AuthenticationInternational,
            "service" => RateColumn::Service,
            "marketinglite" | "marketingmessageslite" | "mmlite" => RateColumn::MarketingLite,
            _ => return None,
        })
    }
}

impl fmt::Display for RateColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The categories that have volume tiers (V-1, V-6): utility, authentication and
/// authentication-international (which shares authentication's counter but has its own bands).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum TierCategory {
    Utility,
    Authentication,
    AuthenticationInternational,
}

impl TierCategory {
    pub const COUNT: usize = 3;
    pub const ALL: [TierCategory; TierCategory::COUNT] = [
        TierCategory::Utility,
        TierCategory::Authentication,
        TierCategory::AuthenticationInternational,
    ];

    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        self.column().name()
    }

    /// The rate-card column whose list rate the bands discount.
    pub const fn column(self) -> RateColumn {
        match self {
            TierCategory::Utility => RateColumn::Utility,
            TierCategory::Authentication => RateColumn::Authentication,
            TierCategory::AuthenticationInternational => RateColumn::AuthenticationInternational,
        }
    }

    pub const fn from_column(column: RateColumn) -> Option<TierCategory> {
        match column {
            RateColumn::Utility => Some(TierCategory::Utility),
            RateColumn::Authentication => Some(TierCategory::Authentication),
            RateColumn::AuthenticationInternational => {
                Some(TierCategory::AuthenticationInternational)
            }
            _ => None,
        }
    }

    /// Recognises a group header of the tiers CSV (`Utility`, `Authentication`, `Auth-Intl`).
    pub fn from_header(text: &str) -> Option<TierCategory> {
        RateColumn::from_header(text).and_then(TierCategory::from_column)
    }
}

impl fmt::Display for TierCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;
    use crate::card::RateCard;

    /// RC-3: header variants of every era.
    #[test]
    fn rc3_header_variants() {
        let text = "Cost per conversation in USD, effective February 1, 2022
Market,Currency,Business Initiated,\"User-
Initiated\"
Germany,$US,0.1365,0.0819
";
        let card = RateCard::parse_csv(text, "b.csv").unwrap();
        assert_eq!(
            card.rate(m("Germany"), RateColumn::BusinessInitiated),
            Some(d("0.1365"))
        );
        assert_eq!(
            card.rate(m("Germany"), RateColumn::UserInitiated),
            Some(d("0.0819"))
        );
        let cols: Vec<RateColumn> = card.columns().collect();
        assert_eq!(
            cols,
            vec![RateColumn::BusinessInitiated, RateColumn::UserInitiated]
        );
        for (h, c) in [
            ("Notification", RateColumn::Template),
            ("Template", RateColumn::Template),
            ("Business-Initiated", RateColumn::BusinessInitiated),
            ("MARKETING LITE", RateColumn::MarketingLite),
            ("Marketing (per message)", RateColumn::Marketing),
            ("Auth-Intl", RateColumn::AuthenticationInternational),
            (
                "authentication_international",
                RateColumn::AuthenticationInternational,
            ),
        ] {
            assert_eq!(RateColumn::from_header(h), Some(c), "{h}");
        }
        for c in RateColumn::ALL {
            assert_eq!(RateColumn::from_header(c.name()), Some(c));
        }
    }
}
