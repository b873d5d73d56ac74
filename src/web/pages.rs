//! The KX watch list and the daily totals, each as a page and as CSV
//! under the same filters, and what every view shares (filter parsing, the
//! CSV writer). Filters come by GET and none of them can carry a patient
//! identifier (the held-lines queue is in `held.rs`).

use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::render::{csv_response, decimal, dollars};
use super::{App, Shared};
use crate::store::web::{DailyRow, KxRow};

pub(super) fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn date(s: &Option<String>, name: &str) -> Result<Option<NaiveDate>, String> {
    blank(s)
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| format!("{name}: a date as YYYY-MM-DD"))
        })
        .transpose()
}

pub(super) fn one_of(
    s: &Option<String>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<String>, String> {
    match blank(s) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(_) => Err(format!("{name}: one of {}", allowed.join(", "))),
    }
}

pub(super) fn bad_request(app: &App, message: String) -> Response {
    app.templates.page(
        StatusCode::BAD_REQUEST,
        "error.html",
        super::render::error("A filter is not valid", &message),
    )
}

/// A CSV cell: text a spreadsheet would read as a formula is quoted with a
/// leading apostrophe (values come from events).
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

pub(super) fn csv_of(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r.iter().map(|c| cell(c)))?;
    }
    Ok(w.into_inner()?)
}

pub(super) fn csv_or_error(app: &App, name: &str, body: anyhow::Result<Vec<u8>>) -> Response {
    match body {
        Ok(b) => csv_response(name, b),
        Err(e) => app.unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct KxQuery {
    year: Option<String>,
    margin: Option<String>,
}

/// The watch list's inputs: year, its threshold and review amount, margin.
struct KxAsk {
    year: i32,
    kx_cents: i64,
    review_cents: i64,
    margin_cents: i64,
}

fn kx_ask(app: &App, q: &KxQuery) -> Result<KxAsk, String> {
    let year = match blank(&q.year) {
        None => Utc::now().year(),
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (1900..=2100).contains(y))
            .ok_or("year: a year such as 2026")?,
    };
    let margin_cents = match blank(&q.margin) {
        None => app.config.kx_margin_cents,
        Some(m) => m
            .parse::<u32>()
            .map(|d| i64::from(d) * 100)
            .map_err(|_| "margin: whole dollars")?,
    };
    let t = crate::domain::Rules::builtin()
        .policies
        .therapy_threshold(year)
        .ok_or_else(|| format!("no Medicare therapy threshold is known for {year}"))?;
    Ok(KxAsk {
        year,
        kx_cents: t.kx_cents,
        review_cents: t.review_cents,
        margin_cents,
    })
}

fn group_name(g: &str) -> &'static str {
    if g == "ot" {
        "OT"
    } else {
        "PT + SLP"
    }
}

fn kx_status(r: &KxRow) -> &'static str {
    if r.review_crossed.is_some() {
        "past review amount"
    } else if r.kx_crossed.is_some() {
        "past KX threshold"
    } else {
        "near KX threshold"
    }
}

async fn kx_rows(app: &App, q: &KxQuery) -> Result<(KxAsk, Vec<KxRow>), Response> {
    let ask = kx_ask(app, q).map_err(|m| bad_request(app, m))?;
    let rows = app
        .db
        .web_kx_watch(
            ask.year,
            ask.kx_cents,
            ask.review_cents,
            ask.margin_cents,
            app.config.query_timeout,
        )
        .await
        .map_err(|e| app.unavailable(e))?;
    Ok((ask, rows))
}

pub(crate) async fn kx(
    State(app): State<Shared>,
    Query(q): Query<KxQuery>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (ask, rows) = match kx_rows(&app, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let view: Vec<_> = rows
        .iter()
        .map(|r| {
            minijinja::context! {
                patient_id => r.patient_id,
                group => group_name(&r.kx_group),
                amount => dollars(r.ytd_cents),
                lines => r.lines,
                last_dos => r.last_date_of_service.to_string(),
                status => kx_status(r),
                kx_crossed => r.kx_crossed.map(|d| d.to_string()).unwrap_or_default(),
                review_crossed => r.review_crossed.map(|d| d.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let ctx = minijinja::context! {
        page => "kx",
        year => ask.year,
        margin => ask.margin_cents / 100,
        threshold => dollars(ask.kx_cents),
        review => dollars(ask.review_cents),
        watch_from => dollars(ask.kx_cents - ask.margin_cents),
        rows => view,
        csv => format!("/kx.csv{}", raw.map(|r| format!("?{r}")).unwrap_or_default()),
    };
    app.templates.page(StatusCode::OK, "kx.html", ctx)
}

pub(crate) async fn kx_csv(State(app): State<Shared>, Query(q): Query<KxQuery>) -> Response {
    let (ask, rows) = match kx_rows(&app, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let header = [
        "year",
        "patient_id",
        "group",
        "ytd_amount",
        "lines",
        "last_date_of_service",
        "status",
        "kx_threshold",
        "kx_crossed_on",
        "review_amount",
        "review_crossed_on",
    ];
    let out = rows.iter().map(|r| {
        vec![
            ask.year.to_string(),
            r.patient_id.clone(),
            group_name(&r.kx_group).to_owned(),
            decimal(r.ytd_cents),
            r.lines.to_string(),
            r.last_date_of_service.to_string(),
            kx_status(r).to_owned(),
            decimal(ask.kx_cents),
            r.kx_crossed.map(|d| d.to_string()).unwrap_or_default(),
            decimal(ask.review_cents),
            r.review_crossed.map(|d| d.to_string()).unwrap_or_default(),
        ]
    });
    csv_or_error(&app, "kx-watch.csv", csv_of(&header, out))
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct DailyQuery {
    payer: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn daily_rows(app: &App, q: &DailyQuery) -> Result<Vec<DailyRow>, Response> {
    let (from, to) = date(&q.from, "date of service from")
        .and_then(|f| Ok((f, date(&q.to, "date of service to")?)))
        .map_err(|m| bad_request(app, m))?;
    app.db
        .web_daily(blank(&q.payer), from, to, app.config.query_timeout)
        .await
        .map_err(|e| app.unavailable(e))
}

pub(crate) async fn daily(
    State(app): State<Shared>,
    Query(q): Query<DailyQuery>,
    RawQuery(raw): RawQuery,
) -> Response {
    let rows = match daily_rows(&app, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let total = |status: &str| {
        let (mut lines, mut not_billable, mut units, mut cents) = (0, 0, 0, 0);
        for r in rows.iter().filter(|r| r.status == status) {
            lines += r.billable_lines;
            not_billable += r.not_billable_lines;
            units += r.units;
            cents += r.expected_payment_cents;
        }
        minijinja::context! { lines, not_billable, units, amount => dollars(cents) }
    };
    let view: Vec<_> = rows
        .iter()
        .map(|r| {
            minijinja::context! {
                date_of_service => r.date_of_service.to_string(),
                payer => r.payer_id,
                status => if r.status == "needs_review" { "held" } else { "validated" },
                lines => r.billable_lines,
                not_billable => r.not_billable_lines,
                units => r.units,
                amount => dollars(r.expected_payment_cents),
            }
        })
        .collect();
    let ctx = minijinja::context! {
        page => "daily",
        q => q,
        rows => view,
        held => total("needs_review"),
        validated => total("validated"),
        csv => format!("/daily.csv{}", raw.map(|r| format!("?{r}")).unwrap_or_default()),
    };
    app.templates.page(StatusCode::OK, "daily.html", ctx)
}

pub(crate) async fn daily_csv(State(app): State<Shared>, Query(q): Query<DailyQuery>) -> Response {
    let rows = match daily_rows(&app, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let header = [
        "date_of_service",
        "payer_id",
        "status",
        "billable_lines",
        "not_billable_lines",
        "units",
        "expected_payment",
    ];
    let out = rows.into_iter().map(|r| {
        vec![
            r.date_of_service.to_string(),
            r.payer_id,
            r.status,
            r.billable_lines.to_string(),
            r.not_billable_lines.to_string(),
            r.units.to_string(),
            decimal(r.expected_payment_cents),
        ]
    });
    csv_or_error(&app, "daily-totals.csv", csv_of(&header, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_cell_never_starts_a_spreadsheet_formula() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("@SUM"), "'@SUM");
        assert_eq!(cell("MEDICARE-B"), "MEDICARE-B");
        let csv = csv_of(&["a"], [vec!["=1+1".to_owned()]].into_iter()).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "a\n'=1+1\n");
    }
}
