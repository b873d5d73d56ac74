//! The templates, compiled into the binary and HTML-escaped on output
//! (minijinja's autoescape, forced for every template), the stylesheet,
//! and the formatting the pages share.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

pub(crate) const STYLESHEET: &str = include_str!("templates/app.css");

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("held.html", include_str!("templates/held.html")),
    ("kx.html", include_str!("templates/kx.html")),
    ("daily.html", include_str!("templates/daily.html")),
];

pub(crate) struct Templates(Environment<'static>);

impl Templates {
    pub(crate) fn new() -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
        }
        Ok(Templates(env))
    }

    /// Renders a page; a template error is a 500 with a fixed text.
    pub(crate) fn page(&self, status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
        let rendered = self
            .0
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from_serialize(&ctx)));
        match rendered {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!("web: template {name} failed: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered\n",
                )
                    .into_response()
            }
        }
    }
}

/// A CSV download: the file name says what it is, never a value.
pub(crate) fn csv_response(name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
pub(crate) struct Message<'a> {
    title: &'a str,
    message: &'a str,
    error: Option<&'a str>,
}

pub(crate) fn login(error: Option<&str>) -> Message<'_> {
    Message {
        title: "Sign in",
        message: "",
        error,
    }
}

pub(crate) fn error<'a>(title: &'a str, message: &'a str) -> Message<'a> {
    Message {
        title,
        message,
        error: None,
    }
}

/// Cents as dollars: `$1,234.56` (negative with a leading minus).
pub(crate) fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", c % 100)
}

/// Cents as a plain decimal for CSV: `1234.56`.
pub(crate) fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// How long since `since`: days when at least one, else hours, else minutes.
pub(crate) fn held_for(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = now.signed_duration_since(since);
    if d.num_days() >= 1 {
        format!("{} d", d.num_days())
    } else if d.num_hours() >= 1 {
        format!("{} h", d.num_hours())
    } else {
        format!("{} min", d.num_minutes().max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_ages_read_as_people_write_them() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(248_000), "$2,480.00");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
        assert_eq!(dollars(-5), "-$0.05");
        assert_eq!(decimal(248_005), "2480.05");
        let now = Utc::now();
        assert_eq!(held_for(now - chrono::Duration::days(3), now), "3 d");
        assert_eq!(held_for(now - chrono::Duration::hours(5), now), "5 h");
        assert_eq!(held_for(now, now), "0 min");
    }

    #[test]
    fn every_template_escapes_what_it_shows() {
        let t = Templates::new().unwrap();
        let r = t.page(
            StatusCode::OK,
            "error.html",
            error("<script>alert(1)</script>", "a & b"),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let body = futures_body(r);
        assert!(body.contains("&lt;script&gt;"), "{body}");
        assert!(!body.contains("<script>"));
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
