//! `claimline web`: a read-only, signed-in view over Postgres for
//! revenue-cycle teams (contract section 6): the held-lines queue, the KX
//! watch list, daily totals, each as a page and as CSV.
//!
//! - this file: the router, the headers every response carries, sign-in
//!   and sign-out, the error page;
//! - [`auth`]: credentials, session cookies, the sign-in throttle;
//! - [`held`]: the held-lines queue and its CSV;
//! - [`pages`]: the KX watch list, the daily totals, their CSV, and what
//!   the views share;
//! - [`render`]: the templates (compiled in, HTML-escaped) and formatting.
//!
//! It reads the views of migration 0008 through [`crate::store::Db`] and
//! changes nothing. No patient identifier goes into a URL (no filter takes
//! one), a log line or a metric.

mod auth;
mod held;
mod pages;
mod render;

pub use auth::Credentials;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::store::Db;

/// Exactly what the issue asks of every response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// What the app needs besides the database.
pub struct WebConfig {
    pub credentials: Credentials,
    /// How far below the year's KX threshold a patient enters the watch
    /// list, in cents.
    pub kx_margin_cents: i64,
    /// The deadline of every database call.
    pub query_timeout: Duration,
    /// Mark the session cookie `Secure` (behind TLS).
    pub secure_cookie: bool,
    pub session_lifetime: Duration,
}

pub(crate) struct App {
    db: Db,
    config: WebConfig,
    sessions: auth::Sessions,
    throttle: auth::Throttle,
    templates: render::Templates,
}

type Shared = Arc<App>;

/// Binds `listen` and serves until `stop` (SIGTERM, Ctrl-C). The pool
/// connects on first use, so the app starts (and says the database is not
/// answering) while Postgres is down; every session has a statement
/// timeout of the query deadline.
pub async fn run(
    listen: SocketAddr,
    url: &crate::store::DatabaseUrl,
    pool_size: u32,
    config: WebConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = Db::connect_lazy(
        url,
        pool_size,
        crate::store::Timeouts::from_statement(config.query_timeout),
    )?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "claimline web listening");
    serve(listener, db, config, stop).await
}

/// Serves the app on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    db: Db,
    config: WebConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Arc::new(App {
        db,
        sessions: auth::Sessions::new(config.session_lifetime)?,
        throttle: auth::Throttle::new(Duration::from_secs(300), 10, 100),
        templates: render::Templates::new()?,
        config,
    });
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await?;
    Ok(())
}

fn router(app: Shared) -> Router {
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to("/held") }))
        .route("/held", get(held::held))
        .route("/held.csv", get(held::held_csv))
        .route("/kx", get(pages::kx))
        .route("/kx.csv", get(pages::kx_csv))
        .route("/daily", get(pages::daily))
        .route("/daily.csv", get(pages::daily_csv))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_session));
    Router::new()
        .merge(signed_in)
        .route("/login", get(login_page).post(login))
        .route("/static/app.css", get(stylesheet))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn(secure_headers))
        .with_state(app)
}

/// `Cache-Control: no-store` and the CSP on every response, errors included.
async fn secure_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Without a valid session: to the sign-in page, with no data.
async fn require_session(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(auth::cookie_value)
        .any(|v| app.sessions.valid(v));
    if ok {
        next.run(req).await
    } else {
        Redirect::to("/login").into_response()
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        render::STYLESHEET,
    )
}

async fn ready(State(app): State<Shared>) -> impl IntoResponse {
    match tokio::time::timeout(app.config.query_timeout, app.db.ping()).await {
        Ok(true) => (StatusCode::OK, "ready\n"),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database unreachable\n",
        ),
    }
}

async fn login_page(State(app): State<Shared>) -> Response {
    app.templates
        .page(StatusCode::OK, "login.html", render::login(None))
}

#[derive(Deserialize)]
struct SignIn {
    user: String,
    password: String,
}

async fn login(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SignIn>,
) -> Response {
    let client: IpAddr = peer.ip();
    if !app.throttle.allowed(client) {
        tracing::warn!(%client, "web sign-in refused: too many failed attempts");
        return app.templates.page(
            StatusCode::TOO_MANY_REQUESTS,
            "login.html",
            render::login(Some(
                "Too many failed sign-ins. Try again in a few minutes.",
            )),
        );
    }
    if !app.config.credentials.check(&form.user, &form.password) {
        app.throttle.failed(client);
        tracing::warn!(%client, "web sign-in failed");
        return app.templates.page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            render::login(Some("Wrong user or password.")),
        );
    }
    let secure = if app.config.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        auth::COOKIE,
        app.sessions.issue(),
        app.config.session_lifetime.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/held")).into_response()
}

async fn logout() -> Response {
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::COOKIE
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

impl App {
    /// A failed database read: the error page, 503 (the database is down or
    /// slow). The cause is logged without any value from a row.
    fn unavailable(&self, e: anyhow::Error) -> Response {
        // The outermost context is our own text; the server's message (which
        // could quote a value) is not logged, its SQLSTATE is.
        let code = crate::store::web::sqlstate_in(&e).unwrap_or_default();
        tracing::warn!(sqlstate = %code, "web: database read failed: {e}");
        self.templates.page(
            StatusCode::SERVICE_UNAVAILABLE,
            "error.html",
            render::error(
                "The database is not answering",
                "The claim data cannot be read right now. Nothing was changed; try again in a minute.",
            ),
        )
    }
}
