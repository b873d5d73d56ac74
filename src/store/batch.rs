//! The batch transaction: lock the batch's encounters, load what the
//! ledger needs, then write everything with one bulk statement per table.

use anyhow::Context;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use super::copy::copy_claim_lines;
use super::outbox::Owner;
use super::{BatchWrite, Keys};
use crate::domain::ledger::Ledger;
use crate::domain::{ClaimLine, KxGroup};

/// Opens the batch transaction and locks the batch's encounters, then its
/// patients' years (each set in a fixed order, encounters first, so two
/// instances cannot deadlock), then loads what the ledger needs. The
/// encounter locks make the idempotency check and the writes one atomic
/// step even during a rebalance; the patient-year locks make two batches
/// that bill one patient's year see each other's amounts (KX).
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
    let active = sqlx::query(
        // The lines in force: the encounter's lines not voided (a reissue
        // adds line numbers to a version, so they are not derived from
        // the event's line count).
        "SELECT to_jsonb(c) FROM unnest($1::text[]) AS u(id)
         JOIN claim_lines c ON c.encounter_id = u.id AND c.status <> 'void'
         ORDER BY u.id, c.encounter_version, c.line_no",
    )
    .bind(encounter_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to load the lines in force")?;
    for row in active {
        let value: serde_json::Value = row.get(0);
        let line: ClaimLine =
            serde_json::from_value(value).context("A stored claim line does not decode")?;
        ledger
            .active
            .entry(line.encounter_id.clone())
            .or_default()
            .push(line);
    }
    Ok((tx, ledger))
}

/// Locks the batch's patient-years (after its encounters), then loads their
/// Medicare year-to-date therapy amounts: the expected payments of their
/// non-void lines, by group.
async fn load_year_to_date(
    tx: &mut Transaction<'static, Postgres>,
    patient_years: &[(&str, i32)],
    ledger: &mut Ledger,
) -> anyhow::Result<()> {
    if patient_years.is_empty() {
        return Ok(());
    }
    let (patients, years): (Vec<&str>, Vec<i32>) = patient_years.iter().copied().unzip();
    // The two-key advisory locks are another space than the encounters'
    // one-key locks; in sorted key order.
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
    let rows = sqlx::query(
        "SELECT u.p, u.y, c.kx_group, sum(c.expected_payment_cents)::int8
         FROM unnest($1::text[], $2::int4[]) AS u(p, y)
         JOIN claim_lines c ON c.patient_id = u.p AND c.kx_group IS NOT NULL AND c.status <> 'void'
              AND c.date_of_service >= make_date(u.y, 1, 1) AND c.date_of_service < make_date(u.y + 1, 1, 1)
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
