//! What the batch transaction loads for the ledger, under its locks: the
//! year-to-date amounts, the days' lines in force, and event payloads.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::{Decode, Keys};
use crate::domain::ledger::Ledger;
use crate::domain::{ClaimLine, KxGroup};

/// Loads the (locked) patient-years' Medicare year-to-date therapy
/// amounts: the expected payments of their non-void lines, by group.
pub(super) async fn load_year_to_date(
    tx: &mut PgConnection,
    patient_years: &[(&str, i32)],
    ledger: &mut Ledger,
) -> anyhow::Result<()> {
    if patient_years.is_empty() {
        return Ok(());
    }
    let (patients, years): (Vec<&str>, Vec<i32>) = patient_years.iter().copied().unzip();
    let rows = sqlx::query(
        "SELECT u.p, u.y, c.kx_group, sum(c.expected_payment_cents)::int8
         FROM unnest($1::text[], $2::int4[]) AS u(p, y)
         CROSS JOIN LATERAL (SELECT kx_group, expected_payment_cents FROM claim_lines
                             WHERE patient_id = u.p AND status <> 'void' AND kx_group IS NOT NULL
                               AND date_of_service >= make_date(u.y, 1, 1)
                               AND date_of_service < make_date(u.y + 1, 1, 1) OFFSET 0) AS c
         GROUP BY 1, 2, 3",
    )
    .bind(&patients)
    .bind(&years)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to load year-to-date amounts")?;
    for r in rows {
        let group = match r.get::<&str, _>(2) {
            "ot" => KxGroup::Ot,
            _ => KxGroup::PtSlp,
        };
        let cents: Option<i64> = r.get(3);
        ledger.ytd.set(
            r.get::<String, _>(0).into(),
            r.get(1),
            group,
            cents.unwrap_or(0),
        );
    }
    Ok(())
}

/// The encounters judged together: (patient, payer, date of service), every
/// provider's (NPI) day of it (the units per NPI, co-treatment across NPIs).
pub(super) type Day = (String, String, NaiveDate);

/// Locks patient-years: two-key advisory locks, another space than the
/// encounters' one-key locks, in sorted key order after the encounters. A
/// patient-year lock serialises two batches that bill one patient's year
/// (KX) and, since a day is one patient's, two visits of one day and two
/// providers' encounters of one (patient, payer, date) (co-treatment) on
/// two instances: a coarser lock than (patient, payer, date), which it
/// covers. Nothing else changes an encounter's date but its own events,
/// which the encounter lock holds.
pub(super) async fn lock_patient_years(
    tx: &mut PgConnection,
    patient_years: &[(&str, i32)],
) -> anyhow::Result<()> {
    if patient_years.is_empty() {
        return Ok(());
    }
    let (patients, years): (Vec<&str>, Vec<i32>) = patient_years.iter().copied().unzip();
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k1, k2)) FROM
           (SELECT hashtext(p) AS k1, y AS k2 FROM unnest($1::text[], $2::int4[]) AS u(p, y)
            ORDER BY 1, 2) AS keys",
    )
    .bind(&patients)
    .bind(&years)
    .execute(&mut *tx)
    .await
    .context("Failed to lock patient years")?;
    Ok(())
}

/// The lines in force of the batch's encounters and of every encounter on
/// their days (every provider's: one query for the batch, whatever its
/// size), and, for days with more than one encounter, the payloads of
/// their newest events (to re-evaluate the day and judge co-treatment). A reissue adds line
/// numbers to a version, so lines are found by encounter, not derived from
/// an event's line count.
pub(super) async fn load_days(
    tx: &mut PgConnection,
    keys: &Keys<'_>,
    days: &[Day],
    ledger: &mut Ledger,
    decode: Decode,
) -> anyhow::Result<()> {
    // Only an encounter with an event processed before has lines.
    let known: Vec<&str> = keys
        .encounters
        .iter()
        .copied()
        .filter(|e| ledger.versions.contains_key(*e))
        .collect();
    let encounter_ids = &known;
    let rows = sqlx::query(
        // LATERAL ... OFFSET 0 (not flattened into a join): index probes per
        // encounter and per day, whatever the table's statistics say (a
        // fresh table's make a hash join over a scan look cheaper).
        "SELECT to_jsonb(c) FROM unnest($1::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                             WHERE c.encounter_id = u.id AND c.status <> 'void' OFFSET 0) AS c
         UNION ALL
         SELECT to_jsonb(c) FROM unnest($2::text[], $3::text[], $4::date[]) AS u(p, pay, d)
         CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                             WHERE c.patient_id = u.p AND c.date_of_service = u.d AND c.status <> 'void'
                               AND c.payer_id = u.pay
                               AND NOT (c.encounter_id = ANY($1)) OFFSET 0) AS c",
    )
    .bind(encounter_ids)
    .bind(days.iter().map(|d| d.0.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.1.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.2).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await
    .context("Failed to load the lines in force")?;
    for row in rows {
        let value: serde_json::Value = row.get(0);
        let line: ClaimLine =
            serde_json::from_value(value).context("A stored claim line does not decode")?;
        ledger
            .active
            .entry(line.encounter_id.clone())
            .or_default()
            .push(line);
    }
    for lines in ledger.active.values_mut() {
        lines.sort_by_key(|l| (l.encounter_version, l.line_no));
    }
    // Days with more than one encounter, counting those in force and the
    // batch's events': theirs in force are re-evaluated with the day.
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
    // Owned (shared) ids: `on_day` borrows the ledger, which the load fills.
    let wanted: Vec<Arc<str>> = on_day
        .values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .filter_map(|id| ledger.active.get_key_value(*id).map(|(k, _)| k.clone()))
        .collect();
    let wanted: Vec<&str> = wanted.iter().map(|id| &**id).collect();
    load_payloads(tx, &wanted, ledger, decode).await
}

/// The payloads of the newest events of these encounters in force (those
/// their lines came from), decoded into `ledger.encounters`.
pub(super) async fn load_payloads(
    tx: &mut PgConnection,
    encounter_ids: &[&str],
    ledger: &mut Ledger,
    decode: Decode,
) -> anyhow::Result<()> {
    let events: Vec<&str> = encounter_ids
        .iter()
        .filter(|id| !ledger.encounters.contains_key(**id))
        .filter_map(|id| ledger.active.get(*id)?.first().map(|l| &*l.event_id))
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let payloads = sqlx::query("SELECT payload FROM encounter_payloads WHERE event_id = ANY($1)")
        .bind(&events)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to load event payloads")?;
    // The highest line number each one's version used, voided included.
    let (ids, versions): (Vec<&str>, Vec<i32>) = encounter_ids
        .iter()
        .filter_map(|id| {
            let l = ledger.active.get(*id)?.first()?;
            Some((*id, l.encounter_version as i32))
        })
        .unzip();
    let highest = sqlx::query(
        "SELECT u.id, m.n FROM unnest($1::text[], $2::int4[]) AS u(id, v)
         CROSS JOIN LATERAL (SELECT max(line_no) AS n FROM claim_lines
                             WHERE encounter_id = u.id AND encounter_version = u.v OFFSET 0) AS m",
    )
    .bind(&ids)
    .bind(&versions)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to read line numbers")?;
    for row in highest {
        let (id, n): (String, Option<i32>) = (row.get(0), row.get(1));
        if let Some(n) = n {
            ledger.max_line_no.insert(id.into(), n.max(0) as u32);
        }
    }
    for row in payloads {
        let bytes: Vec<u8> = row.get(0);
        // Decoded once before; a payload that no longer decodes (a rule of
        // the decoder tightened since) leaves that encounter's lines as
        // they are.
        if let Some(enc) = decode(&bytes) {
            ledger
                .encounters
                .insert(enc.encounter_id.clone(), Arc::new(enc));
        }
    }
    Ok(())
}
