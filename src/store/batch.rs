//! The batch transaction: lock the batch's encounters, load what the
//! ledger needs, then write everything with one bulk statement per table.

use anyhow::Context;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use super::copy::copy_claim_lines;
use super::outbox::Owner;
use super::{BatchWrite, Keys};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use crate::domain::ledger::Ledger;
use crate::domain::{ClaimLine, KxGroup};

/// Opens the batch transaction and locks the batch's encounters, then its
/// patients' years (each set in a fixed order, encounters first, so two
/// instances cannot deadlock), then loads what the ledger needs. The
/// encounter locks make the idempotency check and the writes one atomic
/// step even during a rebalance; the patient-year locks make two batches
/// that bill one patient's year (or day) see each other's lines. A batch
/// holds up to two advisory locks per event (see the README on
/// `max_locks_per_transaction`).
pub async fn begin_batch(
    pool: &PgPool,
    keys: &Keys<'_>,
) -> anyhow::Result<(Transaction<'static, Postgres>, Ledger)> {
    let (encounter_ids, event_ids) = (&keys.encounters, &keys.events);
    let mut tx = pool
        .begin()
        .await
        .context("Failed to begin a transaction")?;
    let mut ledger = Ledger::default();
    if encounter_ids.is_empty() {
        return Ok((tx, ledger));
    }
    // Transaction-scoped advisory locks, taken in sorted id order so two
    // instances cannot deadlock; a hash collision only serialises more.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k)) FROM
           (SELECT hashtextextended(id, 0) AS k FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n) AS keys",
    )
    .bind(encounter_ids)
    .execute(&mut *tx)
    .await
    .context("Failed to lock encounters")?;
    lock_patient_years(&mut tx, &keys.patient_years).await?;
    load_year_to_date(&mut tx, &keys.patient_years, &mut ledger).await?;
    let rows = sqlx::query(
        // One index probe per encounter, whatever the table's statistics say.
        "SELECT u.id, v.version FROM unnest($1::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT encounter_version AS version FROM encounter_events e
                             WHERE e.encounter_id = u.id ORDER BY encounter_version DESC LIMIT 1) AS v",
    )
    .bind(encounter_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to read encounter versions")?;
    for row in rows {
        let version: i32 = row.get(1);
        let id: String = row.get(0);
        ledger.versions.insert(id.into(), version as u32);
    }
    let seen = sqlx::query(
        "SELECT event_id, encounter_id, encounter_version FROM encounter_events WHERE event_id = ANY($1)",
    )
    .bind(event_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to look up processed events")?;
    ledger.seen = seen
        .into_iter()
        .map(|r| {
            let event_id: String = r.get(0);
            let encounter_id: String = r.get(1);
            let version: i32 = r.get(2);
            (event_id.into(), (encounter_id.into(), version as u32))
        })
        .collect();
    let mut days: Vec<Day> = keys
        .days
        .iter()
        .map(|(p, n, pay, d, _)| (p.to_string(), n.to_string(), pay.to_string(), *d))
        .collect();
    days.sort_unstable();
    days.dedup();
    load_days(&mut tx, keys, &days, &mut ledger).await?;
    // An amendment that changed the patient or moved the date to another
    // year: the day its lines are on now is another patient-year. Lock that
    // too (out of order: a deadlock, should one occur, is detected and the
    // batch retried) and load again, since another instance may have
    // reissued those lines before the lock was ours.
    let mut other: Vec<(&str, i32)> = Vec::new();
    let mut moved: Vec<Day> = Vec::new();
    for id in &keys.encounters {
        let Some(l) = ledger.active.get(*id).and_then(|lines| lines.first()) else {
            continue;
        };
        let year = (&*l.patient_id, l.date_of_service.year());
        if keys.patient_years.binary_search(&year).is_err() {
            other.push(year);
        }
        let day = (
            l.patient_id.to_string(),
            l.provider_npi.to_string(),
            l.payer_id.to_string(),
            l.date_of_service,
        );
        if days.binary_search(&day).is_err() {
            moved.push(day);
        }
    }
    if !other.is_empty() || !moved.is_empty() {
        other.sort_unstable();
        other.dedup();
        let other: Vec<(String, i32)> = other.into_iter().map(|(p, y)| (p.to_owned(), y)).collect();
        let other: Vec<(&str, i32)> = other.iter().map(|(p, y)| (p.as_str(), *y)).collect();
        lock_patient_years(&mut tx, &other).await?;
        load_year_to_date(&mut tx, &other, &mut ledger).await?;
        days.extend(moved);
        days.sort_unstable();
        days.dedup();
        ledger.active.clear();
        ledger.encounters.clear();
        ledger.max_line_no.clear();
        load_days(&mut tx, keys, &days, &mut ledger).await?;
    }
    Ok((tx, ledger))
}

/// Loads the (locked) patient-years' Medicare year-to-date therapy
/// amounts: the expected payments of their non-void lines, by group.
async fn load_year_to_date(
    tx: &mut Transaction<'static, Postgres>,
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
    .fetch_all(&mut **tx)
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

/// A day for the units: (patient, NPI, payer, date of service).
type Day = (String, String, String, NaiveDate);

/// Locks patient-years: two-key advisory locks, another space than the
/// encounters' one-key locks, in sorted key order after the encounters. A
/// patient-year lock serialises two batches that bill one patient's year
/// (KX) and, since a day is one patient's, two visits of one day on two
/// instances; nothing else changes an encounter's date but its own events,
/// which the encounter lock holds.
async fn lock_patient_years(
    tx: &mut Transaction<'static, Postgres>,
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
    .execute(&mut **tx)
    .await
    .context("Failed to lock patient years")?;
    Ok(())
}

/// The lines in force of the batch's encounters and of every encounter on
/// their days, and, for days with more than one encounter, the payloads of
/// their newest events (to re-evaluate the day). A reissue adds line
/// numbers to a version, so lines are found by encounter, not derived from
/// an event's line count.
async fn load_days(
    tx: &mut Transaction<'static, Postgres>,
    keys: &Keys<'_>,
    days: &[Day],
    ledger: &mut Ledger,
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
         SELECT to_jsonb(c) FROM unnest($2::text[], $3::text[], $4::text[], $5::date[]) AS u(p, n, pay, d)
         CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                             WHERE c.patient_id = u.p AND c.date_of_service = u.d AND c.status <> 'void'
                               AND c.provider_npi = u.n AND c.payer_id = u.pay
                               AND NOT (c.encounter_id = ANY($1)) OFFSET 0) AS c",
    )
    .bind(encounter_ids)
    .bind(days.iter().map(|d| d.0.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.1.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.2.as_str()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.3).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
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
    let mut on_day: HashMap<(&str, &str, &str, NaiveDate), Vec<&str>> = HashMap::new();
    for (id, lines) in &ledger.active {
        if let Some(l) = lines.first() {
            let day = (
                &*l.patient_id,
                l.provider_npi.as_str(),
                &*l.payer_id,
                l.date_of_service,
            );
            on_day.entry(day).or_default().push(id);
        }
    }
    for &(p, n, pay, d, id) in &keys.days {
        let ids = on_day.entry((p, n, pay, d)).or_default();
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
    load_payloads(tx, &wanted, ledger).await
}

/// The payloads of the newest events of these encounters in force (those
/// their lines came from), decoded into `ledger.encounters`.
pub async fn load_payloads(
    tx: &mut Transaction<'static, Postgres>,
    encounter_ids: &[&str],
    ledger: &mut Ledger,
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
        .fetch_all(&mut **tx)
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
    .fetch_all(&mut **tx)
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
        if let Ok(enc) = crate::codec::decode(&bytes) {
            ledger
                .encounters
                .insert(enc.encounter_id.clone(), Arc::new(enc));
        }
    }
    Ok(())
}

/// Writes the batch with one bulk statement per table and commits. The
/// batch's outbox entries get the id of their outbox row.
pub async fn commit_batch(
    mut tx: Transaction<'static, Postgres>,
    batch: &mut BatchWrite,
    owner: &Owner,
) -> anyhow::Result<()> {
    if !batch.new_lines.is_empty() {
        copy_claim_lines(&mut tx, &batch.new_lines).await?;
    }
    if !batch.voids.is_empty() {
        let (ids, events): (Vec<&str>, Vec<&str>) =
            batch.voids.iter().map(|(a, b)| (a.as_str(), &**b)).unzip();
        sqlx::query(
            "UPDATE claim_lines c SET status = 'void', voided_by_event_id = v.event_id, updated_at = now()
             FROM unnest($1::text[], $2::text[]) AS v(claim_line_id, event_id)
             WHERE c.claim_line_id = v.claim_line_id",
        )
        .bind(&ids)
        .bind(&events)
        .execute(&mut *tx)
        .await
        .context("Failed to void claim lines")?;
    }
    if !batch.events.is_empty() {
        let e = &batch.events;
        sqlx::query(
            "INSERT INTO encounter_events (event_id, encounter_id, encounter_version, event_type, outcome,
                lines_produced, lines_voided, occurred_at, source_topic, source_partition, source_offset)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int4[],
                $7::int4[], $8::timestamptz[], $9::text[], $10::int4[], $11::int8[])",
        )
        .bind(e.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.version as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_produced as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_voided as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record events")?;
    }
    if !batch.payloads.is_empty() {
        let p = &batch.payloads;
        sqlx::query(
            "INSERT INTO encounter_payloads (event_id, encounter_id, encounter_version, date_of_service, payload)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::date[], $5::bytea[])
             ON CONFLICT DO NOTHING",
        )
        .bind(p.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
        .bind(p.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.version as i32).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.date_of_service).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.payload.as_slice()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to keep event payloads")?;
    }
    if !batch.dead_letters.is_empty() {
        let d = &batch.dead_letters;
        sqlx::query(
            "INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, message)
             SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(d.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.reason).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record dead letters")?;
    }
    let outbox = &mut batch.outbox;
    if !outbox.is_empty() {
        let mut encounters: Vec<&str> = outbox.iter().map(|o| &*o.key).collect();
        encounters.sort_unstable();
        encounters.dedup();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO claim_line_outbox (claim_line_ids, statuses, topics, encounter_ids, owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING id",
        )
        .bind(outbox.iter().map(|o| o.claim_line_id.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| &*o.topic).collect::<Vec<_>>())
        .bind(&encounters)
        .bind(&*owner.id)
        .bind(owner.lease.as_secs_f64())
        .fetch_one(&mut *tx)
        .await
        .context("Failed to write the outbox")?;
        for entry in outbox.iter_mut() {
            entry.id = id;
        }
    }
    tx.commit().await.context("Failed to commit the batch")?;
    Ok(())
}
