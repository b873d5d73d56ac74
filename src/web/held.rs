//! The held-lines queue: every `needs_review` line in force, grouped by
//! encounter, filtered, sorted, with the total held on top; and its CSV.

use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::pages::{bad_request, blank, csv_of, csv_or_error, date, one_of};
use super::render::{decimal, dollars, held_for};
use super::Shared;
use crate::store::web::{Held, HeldFilter};

/// Most lines the page shows (the totals count them all); CSV takes more.
const PAGE_LINES: i64 = 2000;
const CSV_LINES: i64 = 200_000;

#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct HeldQuery {
    payer: Option<String>,
    plan: Option<String>,
    discipline: Option<String>,
    flag: Option<String>,
    npi: Option<String>,
    from: Option<String>,
    to: Option<String>,
    held_days: Option<String>,
    sort: Option<String>,
}

impl HeldQuery {
    fn filter(&self, limit: i64) -> Result<HeldFilter, String> {
        let held_days = blank(&self.held_days)
            .map(|d| {
                d.parse::<u16>()
                    .map(i32::from)
                    .map_err(|_| "held longer than: a whole number of days".to_owned())
            })
            .transpose()?;
        let npi = blank(&self.npi).map(str::to_owned);
        if npi
            .as_deref()
            .is_some_and(|n| n.len() != 10 || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("provider NPI: 10 digits".into());
        }
        Ok(HeldFilter {
            payer: blank(&self.payer).map(str::to_owned),
            plan: one_of(
                &self.plan,
                "plan",
                &["medicare", "medicaid", "commercial", "other"],
            )?,
            discipline: one_of(&self.discipline, "discipline", &["PT", "OT", "SLP"])?,
            flag: blank(&self.flag).map(str::to_owned),
            npi,
            dos_from: date(&self.from, "date of service from")?,
            dos_to: date(&self.to, "date of service to")?,
            held_days,
            by_amount: one_of(&self.sort, "sort", &["age", "amount"])?.as_deref() == Some("amount"),
            limit,
        })
    }
}

#[derive(Serialize)]
struct EncounterView {
    encounter_id: String,
    version: i32,
    date_of_service: String,
    patient_id: String,
    npi: String,
    discipline: String,
    payer: String,
    plan: String,
    held_for: String,
    amount: String,
    lines: Vec<LineView>,
}

#[derive(Serialize)]
struct LineView {
    line_no: i32,
    code: String,
    units: i32,
    modifiers: String,
    amount: String,
    flags: Vec<crate::store::web::FlagRow>,
}

fn group(held: Held) -> Vec<EncounterView> {
    let now = Utc::now();
    let mut out: Vec<EncounterView> = Vec::new();
    let mut cents = Vec::new();
    let mut oldest = Vec::new();
    for r in held.rows {
        let same = out.last().is_some_and(|e| e.encounter_id == r.encounter_id);
        if !same {
            out.push(EncounterView {
                encounter_id: r.encounter_id.clone(),
                version: r.encounter_version,
                date_of_service: r.date_of_service.to_string(),
                patient_id: r.patient_id.clone(),
                npi: r.provider_npi.clone(),
                discipline: r.discipline.clone().unwrap_or_default(),
                payer: r.payer_id.clone(),
                plan: r.plan.clone().unwrap_or_default(),
                held_for: String::new(),
                amount: String::new(),
                lines: Vec::new(),
            });
            cents.push(0i64);
            oldest.push(r.held_since);
        }
        let i = out.len() - 1;
        cents[i] += r.expected_payment_cents.unwrap_or(0);
        oldest[i] = oldest[i].min(r.held_since);
        out[i].lines.push(LineView {
            line_no: r.line_no,
            code: r.code,
            units: r.units,
            modifiers: r.modifiers.join(" "),
            amount: r
                .expected_payment_cents
                .map(dollars)
                .unwrap_or_else(|| "n/a".into()),
            flags: r.flags,
        });
    }
    for (i, e) in out.iter_mut().enumerate() {
        e.amount = dollars(cents[i]);
        e.held_for = held_for(oldest[i], now);
    }
    out
}

pub(crate) async fn held(
    State(app): State<Shared>,
    Query(q): Query<HeldQuery>,
    RawQuery(raw): RawQuery,
) -> Response {
    let filter = match q.filter(PAGE_LINES) {
        Ok(f) => f,
        Err(m) => return bad_request(&app, m),
    };
    let held = match app.db.web_held(&filter, app.config.query_timeout).await {
        Ok(h) => h,
        Err(e) => return app.unavailable(e),
    };
    let (total_lines, total_cents, shown) = (held.total_lines, held.total_cents, held.rows.len());
    let ctx = minijinja::context! {
        page => "held",
        q => q,
        total_lines => total_lines,
        total_amount => dollars(total_cents),
        shown_lines => shown,
        truncated => (shown as i64) < total_lines,
        encounters => group(held),
        csv => format!("/held.csv{}", raw.map(|r| format!("?{r}")).unwrap_or_default()),
    };
    app.templates.page(StatusCode::OK, "held.html", ctx)
}

pub(crate) async fn held_csv(State(app): State<Shared>, Query(q): Query<HeldQuery>) -> Response {
    let filter = match q.filter(CSV_LINES) {
        Ok(f) => f,
        Err(m) => return bad_request(&app, m),
    };
    let held = match app.db.web_held(&filter, app.config.query_timeout).await {
        Ok(h) => h,
        Err(e) => return app.unavailable(e),
    };
    let now = Utc::now();
    let header = [
        "encounter_id",
        "encounter_version",
        "date_of_service",
        "patient_id",
        "provider_npi",
        "discipline",
        "payer_id",
        "plan",
        "line_no",
        "code",
        "units",
        "modifiers",
        "expected_payment",
        "flags",
        "held_since",
        "held_days",
    ];
    let rows = held.rows.into_iter().map(|r| {
        let flags: Vec<String> = r
            .flags
            .iter()
            .map(|f| format!("{} ({}): {}", f.code, f.severity, f.message))
            .collect();
        vec![
            r.encounter_id,
            r.encounter_version.to_string(),
            r.date_of_service.to_string(),
            r.patient_id,
            r.provider_npi,
            r.discipline.unwrap_or_default(),
            r.payer_id,
            r.plan.unwrap_or_default(),
            r.line_no.to_string(),
            r.code,
            r.units.to_string(),
            r.modifiers.join(" "),
            r.expected_payment_cents.map(decimal).unwrap_or_default(),
            flags.join(" | "),
            r.held_since.to_rfc3339(),
            now.signed_duration_since(r.held_since)
                .num_days()
                .to_string(),
        ]
    });
    csv_or_error(&app, "held-lines.csv", csv_of(&header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HeldQuery {
        let s: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_json::from_value(serde_json::Value::Object(
            url_pairs(&s)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        ))
        .unwrap()
    }

    fn url_pairs(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn filters_are_checked_and_blank_ones_filter_nothing() {
        let f = q(&[("payer", " "), ("plan", ""), ("sort", "amount")])
            .filter(10)
            .unwrap();
        assert!(f.payer.is_none() && f.plan.is_none() && f.by_amount);
        let f = q(&[
            ("from", "2026-03-01"),
            ("held_days", "3"),
            ("npi", "1234567893"),
        ])
        .filter(10)
        .unwrap();
        assert_eq!(f.dos_from, chrono::NaiveDate::from_ymd_opt(2026, 3, 1));
        assert_eq!(f.held_days, Some(3));
        for bad in [
            ("from", "03/01/2026"),
            ("plan", "MEDICARE"),
            ("discipline", "PTA"),
            ("held_days", "-1"),
            ("npi", "12345"),
            ("sort", "name"),
        ] {
            assert!(q(&[bad]).filter(10).is_err(), "{bad:?}");
        }
    }
}
