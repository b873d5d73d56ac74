//! What the batch transaction loads for the ledger, under its locks, in
//! one round trip (the function `claimline_lock_and_load` of migration
//! 0012, as 0015 replaced it): the year-to-date amounts, the encounters'
//! versions, the events seen, the days' lines in force, the outbox rows to
//! publish first and the rule tables' fingerprint. Event payloads, needed
//! only for days with more than one encounter, take one more.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::owner_lock::OWNER_LOCK_SPACE;
use super::{Decode, Keys};
use crate::domain::ledger::Ledger;
use crate::domain::{ClaimLine, KxGroup};

/// The encounters judged together: (patient, payer, date of service), every
/// provider's (NPI) day of it (the units per NPI, co-treatment across NPIs).
pub(super) type Day = (String, String, NaiveDate);

/// An unpublished outbox row of the batch's encounters, locked by the
/// batch transaction.
#[derive(Debug, Clone)]
pub(super) struct OutboxRow {
    pub id: i64,
    pub owner: String,
    /// Its lease holds and its owner's session lives.
    pub live: bool,
}

/// What the load found besides the ledger.
pub(super) struct Loaded {
    pub outbox: Vec<OutboxRow>,
    /// The rule tables: (count, newest id).
    pub rules: (i64, i64),
}

/// Locks the encounters, then the patient-years (two-key advisory locks,
/// another space than the encounters' one-key locks, in sorted key order
/// after the encounters), and loads the ledger afresh: see the migration.
///
/// A patient-year lock serialises two batches that bill one patient's year
/// (KX) and, since a day is one patient's, two visits of one day and two
/// providers' encounters of one (patient, payer, date) (co-treatment) on
/// two instances: a coarser lock than (patient, payer, date), which it
/// covers. Nothing else changes an encounter's date but its own events,
/// which the encounter lock holds.
pub(super) async fn lock_and_load(
    tx: &mut PgConnection,
    keys: &Keys<'_>,
    patient_years: &[(&str, i32)],
    days: &[Day],
    ledger: &mut Ledger,
) -> anyhow::Result<Loaded> {
    let (patients, years): (Vec<&str>, Vec<i32>) = patient_years.iter().copied().unzip();
    let rows = sqlx::query(
        "SELECT kind, t1, t2, i1, i2, j FROM claimline_lock_and_load($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&keys.encounters)
    .bind(&keys.events)
    .bind(&patients)
    .bind(&years)
    .bind(days.iter().map(|d| d.0.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.1.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.2).collect::<Vec<_>>())
    .bind(OWNER_LOCK_SPACE)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to lock and load the batch's encounters")?;
    *ledger = Ledger::default();
    let mut loaded = Loaded {
        outbox: Vec::new(),
        rules: (0, 0),
    };
    for r in rows {
        let kind: i8 = r.get(0);
        let t1 = || -> anyhow::Result<String> {
            r.get::<Option<String>, _>(1)
                .context("a batch load row without its key")
        };
        let i1: Option<i64> = r.get(3);
        let i2: Option<i64> = r.get(4);
        match kind as u8 {
            b'y' => {
                let group = match r.get::<Option<&str>, _>(2) {
                    Some("ot") => KxGroup::Ot,
                    _ => KxGroup::PtSlp,
                };
                let year = i32::try_from(i1.unwrap_or(0)).context("year out of range")?;
                ledger.ytd.set(t1()?.into(), year, group, i2.unwrap_or(0));
            }
            b'v' => {
                ledger
                    .versions
                    .insert(t1()?.into(), u32::try_from(i1.unwrap_or(0))?);
            }
            b's' => {
                let encounter: String = r
                    .get::<Option<String>, _>(2)
                    .context("a seen event without its encounter")?;
                ledger.seen.insert(
                    t1()?.into(),
                    (encounter.into(), u32::try_from(i1.unwrap_or(0))?),
                );
            }
            b'l' => {
                let value: serde_json::Value = r.get(5);
                let line: ClaimLine =
                    serde_json::from_value(value).context("A stored claim line does not decode")?;
                ledger
                    .active
                    .entry(line.encounter_id.clone())
                    .or_default()
                    .push(line);
            }
            b'o' => loaded.outbox.push(OutboxRow {
                id: i1.unwrap_or(0),
                owner: t1()?,
                live: i2 == Some(1),
            }),
            b'r' => loaded.rules = (i1.unwrap_or(0), i2.unwrap_or(0)),
            other => anyhow::bail!("unknown batch load row kind {other}"),
        }
    }
    for lines in ledger.active.values_mut() {
        lines.sort_by_key(|l| (l.encounter_version, l.line_no));
    }
    Ok(loaded)
}

/// The encounters in force on a day with more than one encounter, counting
/// those in force and the batch's events': theirs in force are re-evaluated
/// with the day, so their payloads are loaded.
pub(super) fn shared_days(keys: &Keys<'_>, ledger: &Ledger) -> Vec<Arc<str>> {
    let mut on_day: HashMap<(&str, &str, NaiveDate), Vec<&str>> = HashMap::new();
    for (id, lines) in &ledger.active {
        if let Some(l) = lines.first() {
            let day = (&*l.patient_id, &*l.payer_id, l.date_of_service);
            on_day.entry(day).or_default().push(id);
        }
    }
    for &(p, _, pay, d, id) in &keys.days {
        let ids = on_day.entry((p, pay, d)).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    on_day
        .values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .filter_map(|id| ledger.active.get_key_value(*id).map(|(k, _)| k.clone()))
        .collect()
}

/// The payloads of the newest events of these encounters in force (those
/// their lines came from), decoded into `ledger.encounters`, and the
/// highest line number each one's version used (voided included): one
/// statement.
pub(super) async fn load_payloads(
    tx: &mut PgConnection,
    encounter_ids: &[&str],
    ledger: &mut Ledger,
    decode: Decode,
) -> anyhow::Result<()> {
    let wanted: Vec<(&str, &str, i32)> = encounter_ids
        .iter()
        .filter(|id| !ledger.encounters.contains_key(**id))
        .filter_map(|id| {
            let l = ledger.active.get(*id)?.first()?;
            Some((*id, &*l.event_id, l.encounter_version as i32))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT NULL::text, NULL::int4, p.payload FROM encounter_payloads p WHERE p.event_id = ANY($2)
         UNION ALL
         SELECT u.id, m.n, NULL::bytea FROM unnest($1::text[], $3::int4[]) AS u(id, v)
         CROSS JOIN LATERAL (SELECT max(line_no) AS n FROM claim_lines
                             WHERE claim_line_id > (u.id || ':' || u.v || ':') COLLATE \"C\"
                               AND claim_line_id < (u.id || ':' || u.v || ';') COLLATE \"C\"
                               AND encounter_id = u.id AND encounter_version = u.v OFFSET 0) AS m",
    )
    .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
    .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
    .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await
    .context("Failed to load event payloads")?;
    for row in rows {
        match row.get::<Option<Vec<u8>>, _>(2) {
            // Decoded once before; a payload that no longer decodes (a rule
            // of the decoder tightened since) leaves that encounter's lines
            // as they are.
            Some(bytes) => {
                if let Some(enc) = decode(&bytes) {
                    ledger
                        .encounters
                        .insert(enc.encounter_id.clone(), Arc::new(enc));
                }
            }
            None => {
                let (id, n): (Option<String>, Option<i32>) = (row.get(0), row.get(1));
                if let (Some(id), Some(n)) = (id, n) {
                    ledger.max_line_no.insert(id.into(), n.max(0) as u32);
                }
            }
        }
    }
    Ok(())
}
