//! Turning the inbound messages the service stored into recovery work: an opt-out keyword
//! stops the customer's recoveries, any other direct message starts (or moves) a bot trigger.

use super::{Pass, Recovery, Start};
use anyhow::Result;
use std::collections::HashMap;
use tarifa_core::input::{parse_line, Event, Inbound};
use tarifa_core::recovery::{RecoveryConfig, SkipReason, Trigger};
use tarifa_core::time::Instant;

/// Each store's settings, read once per pass (not once per message).
type SettingsByStore = HashMap<String, Option<RecoveryConfig>>;

impl Recovery {
    /// Reads the inbound messages stored since the last pass.
    pub(super) async fn intake(&self, now: Instant, pass: &mut Pass) -> Result<()> {
        let mut stores = SettingsByStore::new();
        loop {
            let cursor = self.store.cursor().await?;
            let batch = self.store.inbound_after(cursor, 500).await?;
            let Some(last) = batch.last().map(|b| b.0) else {
                return Ok(());
            };
            for (_, business, line) in &batch {
                for inbound in direct_messages(line) {
                    self.take_inbound(business, &inbound, now, &mut stores, pass)
                        .await?;
                }
            }
            self.store.advance_cursor(last).await?;
        }
    }

    async fn take_inbound(
        &self,
        business: &str,
        i: &Inbound<'_>,
        now: Instant,
        stores: &mut SettingsByStore,
        pass: &mut Pass,
    ) -> Result<()> {
        if i.text.as_deref().is_some_and(|t| self.section.is_stop(t)) {
            self.store.put_stop(business, &i.user, i.at).await?;
            self.store
                .close_open(business, &i.user, SkipReason::StopKeyword.as_str(), now)
                .await?;
            pass.stops += 1;
            return Ok(());
        }
        let Some(config) = self.settings_once(stores, business).await? else {
            return Ok(());
        };
        let start = Start {
            business,
            user: &i.user,
            trigger: Trigger::Bot,
            cart_id: None,
            at: i.at,
        };
        if self.schedule(config, start, now).await? {
            pass.triggers += 1;
        }
        Ok(())
    }

    async fn settings_once<'s>(
        &self,
        stores: &'s mut SettingsByStore,
        business: &str,
    ) -> Result<Option<&'s RecoveryConfig>> {
        if !stores.contains_key(business) {
            let found = self.settings(business).await?.map(|(c, _)| c);
            stores.insert(business.to_string(), found);
        }
        Ok(stores.get(business).and_then(Option::as_ref))
    }
}

/// The inbound messages of a stored event line, outside groups (none if the line is unreadable).
fn direct_messages(line: &str) -> Vec<Inbound<'_>> {
    let mut events = Vec::new();
    if parse_line(line.as_bytes(), &mut |e| events.push(e)).is_err() {
        return Vec::new();
    }
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Inbound(i) if i.group.is_none() => Some(i),
            _ => None,
        })
        .collect()
}
