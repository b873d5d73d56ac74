//! The batch's rows in one statement (a data-modifying CTE per table), so
//! a batch's writes cost one round trip whatever its size; then COMMIT.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Executor;

use super::outbox::Owner;
use super::BatchWrite;
use crate::domain::claim::Status;
use crate::domain::{ClaimLine, Flag};

/// Every table's rows of the batch, one statement. The batch's outbox
/// entries get the id of their outbox row. Returns the statement's size,
/// roughly (its parameters' bytes).
///
/// The statement's parts see one snapshot: a void of a line this same
/// batch inserts (two versions of an encounter in one batch) would not find
/// it, so such a line is inserted void.
///
/// The rows come from `unnest` calls in the select list, which Postgres
/// steps through in lockstep (a ProjectSet), rather than from one
/// `unnest(a, b, ...)` in FROM, which first copies every row into a
/// tuplestore: measured on 400,000 of the bench's claim lines in batches of
/// 1,300, 3.0 s against 2.5 s.
///
/// A payload is written with its event's `encounter_events` row, for a
/// processed or voided event the load did not find there (one it found is
/// a duplicate, and writes nothing), so a plain INSERT: ON CONFLICT DO
/// NOTHING cost 0.75-0.91 s against 0.57-0.61 s for the bench's 103,000
/// payloads (INSERT ... SELECT into an empty copy of the table). An event
/// id another transaction writes meanwhile fails the events' insert too.
pub(super) async fn write_rows(
    tx: &mut PgConnection,
    batch: &mut BatchWrite,
    owner: &Owner,
) -> anyhow::Result<usize> {
    let mut voids: HashMap<&str, &str> = batch
        .voids
        .iter()
        .map(|(id, by)| (id.as_str(), &**by))
        .collect();
    let lines = Lines::of(&batch.new_lines, &mut voids);
    // The voids left are of lines written before.
    let (void_ids, void_by): (Vec<&str>, Vec<&str>) = batch
        .voids
        .iter()
        .filter(|(id, _)| voids.contains_key(id.as_str()))
        .map(|(a, b)| (a.as_str(), &**b))
        .unzip();
    let e = &batch.events;
    let p = &batch.payloads;
    let d = &batch.dead_letters;
    let outbox = &batch.outbox;
    let mut encounters: Vec<&str> = outbox.iter().map(|o| &*o.key).collect();
    encounters.sort_unstable();
    encounters.dedup();
    // The Bind message's size, roughly: reserved at once rather than grown
    // by doubling (each growth copies what is there).
    let size = p.iter().map(|r| r.payload.len() + 64).sum::<usize>()
        + 320 * batch.new_lines.len()
        + 160 * e.len()
        + 64 * outbox.len()
        + 4096;
    let mut args = sqlx::postgres::PgArguments::default();
    sqlx::Arguments::reserve(&mut args, 50, size);
    let id: Option<i64> = sqlx::query_scalar_with(
        "WITH lines AS (
           INSERT INTO claim_lines (claim_line_id, encounter_id, encounter_version, event_id, date_of_service,
               patient_id, provider_npi, payer_id, line_no, code, units, minutes, modifiers, unit_method, status,
               flags, diagnoses, expected_payment_cents, rules_version, kx_group, voided_by_event_id)
           SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::int4[]), unnest($4::text[]),
                  unnest($5::date[]), unnest($6::text[]), unnest($7::text[]), unnest($8::text[]),
                  unnest($9::int4[]), unnest($10::text[]), unnest($11::int4[]), unnest($12::int4[]),
                  unnest($13::text[])::text[], unnest($14::text[]), unnest($15::text[]),
                  unnest($16::text[])::jsonb, unnest($17::text[])::text[], unnest($18::int8[]),
                  unnest($19::text[]), unnest($20::text[]), unnest($21::text[])
         ), voids AS (
           UPDATE claim_lines c SET status = 'void', voided_by_event_id = v.event_id, updated_at = now()
           FROM unnest($22::text[], $23::text[]) AS v(claim_line_id, event_id)
           WHERE c.claim_line_id = v.claim_line_id
         ), events AS (
           INSERT INTO encounter_events (event_id, encounter_id, encounter_version, event_type, outcome,
               lines_produced, lines_voided, occurred_at, source_topic, source_partition, source_offset)
           SELECT unnest($24::text[]), unnest($25::text[]), unnest($26::int4[]), unnest($27::text[]),
                  unnest($28::text[]), unnest($29::int4[]), unnest($30::int4[]), unnest($31::timestamptz[]),
                  unnest($32::text[]), unnest($33::int4[]), unnest($34::int8[])
         ), payloads AS (
           INSERT INTO encounter_payloads (event_id, encounter_id, encounter_version, date_of_service, payload)
           SELECT unnest($35::text[]), unnest($36::text[]), unnest($37::int4[]), unnest($38::date[]),
                  unnest($39::bytea[])
         ), dead AS (
           INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, message)
           SELECT unnest($40::text[]), unnest($41::int4[]), unnest($42::int8[]), unnest($43::text[]),
                  unnest($44::text[])
           ON CONFLICT DO NOTHING
         ), days AS (
           INSERT INTO patient_day_encounters (patient_id, date_of_service, encounter_id)
           SELECT n.p, n.d, n.e
           FROM (SELECT unnest($51::text[]) AS p, unnest($52::date[]) AS d, unnest($53::text[]) AS e) AS n
           WHERE NOT EXISTS (SELECT 1 FROM patient_day_encounters x
                             WHERE x.patient_id = n.p AND x.date_of_service = n.d AND x.encounter_id = n.e)
         ), outbox AS (
           INSERT INTO claim_line_outbox (claim_line_ids, statuses, topics, encounter_ids, owner, lease_until, owner_locked)
           SELECT $45, $46, $47, $48, $49, now() + make_interval(secs => $50), true
           WHERE cardinality($45::text[]) > 0
           RETURNING id
         )
         SELECT id FROM outbox",
        args,
    )
    .bind(&lines.id)
    .bind(&lines.encounter)
    .bind(&lines.version)
    .bind(&lines.event)
    .bind(&lines.date)
    .bind(&lines.patient)
    .bind(&lines.npi)
    .bind(&lines.payer)
    .bind(&lines.line_no)
    .bind(&lines.code)
    .bind(&lines.units)
    .bind(&lines.minutes)
    .bind(&lines.modifiers)
    .bind(&lines.method)
    .bind(&lines.status)
    .bind(&lines.flags)
    .bind(&lines.diagnoses)
    .bind(&lines.cents)
    .bind(&lines.rules)
    .bind(&lines.kx)
    .bind(&lines.voided_by)
    .bind(&void_ids)
    .bind(&void_by)
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
    .bind(p.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
    .bind(p.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
    .bind(p.iter().map(|r| r.version as i32).collect::<Vec<_>>())
    .bind(p.iter().map(|r| r.date_of_service).collect::<Vec<_>>())
    .bind(p.iter().map(|r| &*r.payload).collect::<Vec<_>>())
    .bind(d.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|r| r.source.partition).collect::<Vec<_>>())
    .bind(d.iter().map(|r| r.source.offset).collect::<Vec<_>>())
    .bind(d.iter().map(|r| r.reason).collect::<Vec<_>>())
    .bind(d.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| o.claim_line_id.as_str()).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| &*o.topic).collect::<Vec<_>>())
    .bind(&encounters)
    .bind(&*owner.id)
    .bind(owner.lease.as_secs_f64())
    .bind(&lines.days.patient)
    .bind(&lines.days.date)
    .bind(&lines.days.encounter)
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to write the batch")?;
    if let Some(id) = id {
        for entry in batch.outbox.iter_mut() {
            entry.id = id;
        }
    }
    Ok(size)
}

pub(super) async fn commit(tx: &mut PgConnection) -> anyhow::Result<()> {
    tx.execute("COMMIT")
        .await
        .context("Failed to commit the batch")?;
    Ok(())
}

/// The claim lines' columns, as arrays.
#[derive(Default)]
struct Lines<'a> {
    id: Vec<&'a str>,
    encounter: Vec<&'a str>,
    version: Vec<i32>,
    event: Vec<&'a str>,
    date: Vec<chrono::NaiveDate>,
    patient: Vec<&'a str>,
    npi: Vec<&'a str>,
    payer: Vec<&'a str>,
    line_no: Vec<i32>,
    code: Vec<&'a str>,
    units: Vec<i32>,
    minutes: Vec<i32>,
    /// Array literals: a line's modifiers (and diagnoses) vary in number,
    /// and a Postgres array of arrays must be rectangular.
    modifiers: Vec<String>,
    method: Vec<&'a str>,
    status: Vec<&'a str>,
    flags: Vec<String>,
    diagnoses: Vec<String>,
    cents: Vec<Option<i64>>,
    rules: Vec<&'a str>,
    kx: Vec<Option<&'a str>>,
    voided_by: Vec<Option<&'a str>>,
    days: Days<'a>,
}

/// The (patient, date of service, encounter) entries of the lines inserted
/// in force, each once: migration 0015's `patient_day_encounters`, which
/// must hold one for every line in force. The statement adds those not
/// there yet; two transactions never add the same entry: it names a
/// patient's day, and a batch holds the locks of its patient-years (those
/// of every day it writes lines on, see `load::lock_and_load`) from the load
/// to COMMIT, so the statement sees every entry committed before.
#[derive(Default)]
struct Days<'a> {
    patient: Vec<&'a str>,
    date: Vec<chrono::NaiveDate>,
    encounter: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    /// The lines' columns; a line `voids` names is inserted void (and
    /// removed from `voids`).
    fn of(lines: &'a [ClaimLine], voids: &mut HashMap<&'a str, &'a str>) -> Lines<'a> {
        let mut c = Lines::default();
        let mut days = HashSet::new();
        for l in lines {
            let by = voids.remove(l.claim_line_id.as_str());
            if by.is_none()
                && l.status != Status::Void
                && days.insert((&*l.patient_id, l.date_of_service, &*l.encounter_id))
            {
                c.days.patient.push(&l.patient_id);
                c.days.date.push(l.date_of_service);
                c.days.encounter.push(&l.encounter_id);
            }
            c.id.push(&l.claim_line_id);
            c.encounter.push(&l.encounter_id);
            c.version.push(l.encounter_version as i32);
            c.event.push(&l.event_id);
            c.date.push(l.date_of_service);
            c.patient.push(&l.patient_id);
            c.npi.push(l.provider_npi.as_str());
            c.payer.push(&l.payer_id);
            c.line_no.push(l.line_no as i32);
            c.code.push(l.code.as_str());
            c.units.push(l.units as i32);
            c.minutes.push(l.minutes as i32);
            c.modifiers
                .push(array_literal(l.modifiers.iter().map(|m| m.as_str())));
            c.method.push(l.unit_method.as_str());
            c.status.push(if by.is_some() {
                "void"
            } else {
                l.status.as_str()
            });
            let mut flags = Vec::with_capacity(2 + 256 * l.flags.len());
            Flag::write_json_array(&l.flags, &mut flags);
            // Serialized JSON is UTF-8.
            c.flags.push(String::from_utf8(flags).unwrap_or_default());
            c.diagnoses
                .push(array_literal(l.diagnoses.iter().map(|d| d.as_str())));
            c.cents.push(l.expected_payment_cents);
            c.rules.push(&l.rules_version);
            c.kx.push(l.kx_group.map(|g| g.as_str()));
            c.voided_by.push(by);
        }
        c
    }
}

/// A Postgres array literal with every element quoted.
fn array_literal<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut literal = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '\\' || c == '"' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_quote_every_element() {
        let literal = |items: &[&str]| array_literal(items.iter().copied());
        assert_eq!(literal(&[]), "{}");
        assert_eq!(
            literal(&["GP", "a\"b", "c\\d"]),
            "{\"GP\",\"a\\\"b\",\"c\\\\d\"}"
        );
    }
}
