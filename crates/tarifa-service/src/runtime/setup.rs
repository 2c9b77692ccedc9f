//! Loads a `--config` file and the rate cards it names into a [`Setup`] (the I/O edge of rating).

use anyhow::{bail, Context, Result};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use tarifa_core::card::{RateBook, RateCard, TierCard};
use tarifa_core::config::{CardFile, ConfigFile};
use tarifa_core::engine::{PriceList, Prices, Setup};
use tarifa_core::time::LocalDate;

/// Reads and validates the config, loads every card.
pub fn load(path: &Path, prices: Prices) -> Result<Setup> {
    load_with_file(path, prices).map(|(setup, _)| setup)
}

/// [`load`], also giving the parsed file (the service reads the wallet settings of price lists).
pub fn load_with_file(path: &Path, prices: Prices) -> Result<(Setup, ConfigFile)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let file: ConfigFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut businesses = Vec::new();
    for b in &file.business {
        let resolved = b
            .resolve()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if businesses
            .iter()
            .any(|x: &tarifa_core::config::Business| x.id == resolved.id)
        {
            bail!(
                "{}: business {:?} is listed twice",
                path.display(),
                resolved.id
            );
        }
        businesses.push(resolved);
    }
    let book = load_book(base, &file.rate_card, &file.tier_card)?;
    let mut price_lists = Vec::new();
    for p in &file.price_list {
        if file.price_list.iter().filter(|q| q.id == p.id).count() > 1 {
            bail!("{}: price_list {:?} is defined twice", path.display(), p.id);
        }
        let list = match (p.markup, p.rate_card.is_empty()) {
            (Some(markup), true) => {
                if markup <= Decimal::ZERO {
                    bail!("{}: price_list {:?}: markup must be positive", path.display(), p.id);
                }
                PriceList { id: p.id.clone(), book: book.scaled(markup, &format!("{} (×{markup})", p.id)), markup }
            }
            (None, false) => PriceList { id: p.id.clone(), book: load_book(base, &p.rate_card, &p.tier_card)?, markup: Decimal::ONE },
            _ => bail!(
                "{}: price_list {:?}: give either `markup` (over Meta's cards) or its own `rate_card` files, not both or neither",
                path.display(),
                p.id
            ),
        };
        price_lists.push(list);
    }
    for b in &businesses {
        if let Some(list) = &b.price_list {
            if !price_lists.iter().any(|p| &p.id == list) {
                bail!(
                    "{}: business {:?}: price_list {list:?} is not defined",
                    path.display(),
                    b.id
                );
            }
        }
    }
    let setup = Setup {
        businesses,
        rules: file.rules.clone(),
        markets: file.markets,
        book,
        price_lists,
        prices,
    };
    Ok((setup, file))
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn load_book(base: &Path, rates: &[CardFile], tiers: &[CardFile]) -> Result<RateBook> {
    let mut book = RateBook::new();
    for c in rates {
        let path = resolve(base, &c.file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read rate card {}", path.display()))?;
        let card = RateCard::parse_csv(&text, &path.display().to_string())?;
        book.add_rate_card(card)?;
    }
    for c in tiers {
        let path = resolve(base, &c.file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read tier card {}", path.display()))?;
        let effective = match &c.effective {
            None => None,
            Some(d) => Some(LocalDate::parse(d).with_context(|| {
                format!("tier_card {}: effective {d:?} is not YYYY-MM-DD", c.file)
            })?),
        };
        book.add_tier_card(TierCard::parse_csv(
            &text,
            &path.display().to_string(),
            effective,
        )?)?;
    }
    Ok(book)
}
