//! Claim lines into Postgres with COPY (text format), the fastest path.

use anyhow::Context;
use sqlx::postgres::PgConnection;

use crate::ascii::decimal;
use crate::dates::date::to_bytes as date_bytes;
use crate::domain::{ClaimLine, Flag};

/// The claim lines' columns, in COPY order.
const CLAIM_LINE_COLUMNS: &str = "claim_line_id, encounter_id, encounter_version, event_id, date_of_service, \
    patient_id, provider_npi, payer_id, line_no, code, units, minutes, modifiers, unit_method, status, \
    flags, diagnoses, expected_payment_cents, rules_version, kx_group";

/// Bulk-inserts claim lines with COPY (text format), the fastest path.
pub(super) async fn copy_claim_lines(
    tx: &mut PgConnection,
    lines: &[ClaimLine],
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut buf = String::with_capacity(lines.len() * 1024);
    for l in lines {
        copy_row(&mut buf, l)?;
    }
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY claim_lines ({CLAIM_LINE_COLUMNS}) FROM STDIN"
        ))
        .await
        .context("Failed to start COPY into claim_lines")?;
    let bytes = buf.len();
    copy.send(buf.into_bytes())
        .await
        .context("Failed to send claim lines")?;
    copy.finish()
        .await
        .context("Failed to insert claim lines")?;
    tracing::debug!(
        rows = lines.len(),
        bytes,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "COPY claim_lines"
    );
    Ok(())
}

fn copy_row(out: &mut String, l: &ClaimLine) -> anyhow::Result<()> {
    let field = |out: &mut String, v: &str| {
        copy_escape(out, v);
        out.push('\t');
    };
    let number = |out: &mut String, n: u32| {
        out.push_str(decimal(u64::from(n), &mut [0; 20]));
        out.push('\t');
    };
    field(out, &l.claim_line_id);
    field(out, &l.encounter_id);
    number(out, l.encounter_version);
    field(out, &l.event_id);
    field(out, std::str::from_utf8(&date_bytes(l.date_of_service))?);
    field(out, &l.patient_id);
    field(out, l.provider_npi.as_str());
    field(out, &l.payer_id);
    number(out, l.line_no);
    field(out, l.code.as_str());
    number(out, l.units);
    number(out, l.minutes);
    array_literal(out, l.modifiers.iter().map(|m| m.as_str()));
    field(out, l.unit_method.as_str());
    field(out, l.status.as_str());
    let mut flags = Vec::with_capacity(2 + 256 * l.flags.len());
    Flag::write_json_array(&l.flags, &mut flags);
    field(out, std::str::from_utf8(&flags)?);
    array_literal(out, l.diagnoses.iter().map(|d| d.as_str()));
    match l.expected_payment_cents {
        Some(c) => {
            if c < 0 {
                out.push('-');
            }
            out.push_str(decimal(c.unsigned_abs(), &mut [0; 20]));
            out.push('\t');
        }
        None => out.push_str("\\N\t"),
    }
    copy_escape(out, &l.rules_version);
    out.push('\t');
    out.push_str(l.kx_group.map_or("\\N", |g| g.as_str()));
    out.push('\n');
    Ok(())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_escape(out: &mut String, v: &str) {
    if !v.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A Postgres array literal with every element quoted, as a COPY field.
fn array_literal<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
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
    copy_escape(out, &literal);
    out.push('\t');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_and_array_escaping() {
        let mut s = String::new();
        copy_escape(&mut s, "a\tb\\c\nd");
        assert_eq!(s, "a\\tb\\\\c\\nd");
        let literal = |items: &[&str]| {
            let mut out = String::new();
            array_literal(&mut out, items.iter().copied());
            out
        };
        assert_eq!(literal(&[]), "{}\t");
        // Array quoting, then COPY's own escaping of the backslashes.
        assert_eq!(
            literal(&["GP", "a\"b", "c\\d"]),
            "{\"GP\",\"a\\\\\"b\",\"c\\\\\\\\d\"}\t"
        );
    }
}
