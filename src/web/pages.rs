//! The three views, each as a page and as CSV under the same filters:
//! the held-lines queue, the KX watch list, the daily totals. Filters come
//! by GET and none of them can carry a patient identifier.

use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::render::{csv_response, decimal, dollars, held_for};
use super::{App, Shared};
use crate::store::web::{DailyRow, Held, HeldFilter, KxRow};

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

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn date(s: &Option<String>, name: &str) -> Result<Option<NaiveDate>, String> {
    blank(s)
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| format!("{name}: a date as YYYY-MM-DD"))
        })
        .transpose()
}

fn one_of(s: &Option<String>, name: &str, allowed: &[&str]) -> Result<Option<String>, String> {
    match blank(s) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(_) => Err(format!("{name}: one of {}", allowed.join(", "))),
    }
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

fn bad_request(app: &App, message: String) -> Response {
    app.templates.page(
        StatusCode::BAD_REQUEST,
        "error.html",
        super::render::error("A filter is not valid", &message),
    )
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

/// A CSV cell: text a spreadsheet would read as a formula is quoted with a
/// leading apostrophe (values come from events).
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv_of(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r.iter().map(|c| cell(c)))?;
    }
    Ok(w.into_inner()?)
}

fn csv_or_error(app: &App, name: &str, body: anyhow::Result<Vec<u8>>) -> Response {
    match body {
        Ok(b) => csv_response(name, b),
        Err(e) => app.unavailable(e),
    }
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
