//! Who may see the pages: one user and password (from the environment or a
//! mounted secret file), compared in constant time; failed sign-ins
//! rate-limited per client address and overall; after a sign-in, a session
//! cookie signed with HMAC-SHA256 under a key drawn at start-up (a restart
//! signs everyone out), HttpOnly and SameSite=Strict.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the session cookie.
pub(crate) const COOKIE: &str = "claimline_session";

/// The user and password that sign in. No `Debug`: it holds the password.
pub struct Credentials {
    user: [u8; 32],
    password: [u8; 32],
}

impl Credentials {
    /// A password shorter than this is refused at start-up.
    pub const MIN_PASSWORD_CHARS: usize = 12;

    pub fn new(user: &str, password: &str) -> anyhow::Result<Credentials> {
        anyhow::ensure!(!user.trim().is_empty(), "the web user is empty");
        anyhow::ensure!(
            password.chars().count() >= Self::MIN_PASSWORD_CHARS,
            "the web password has fewer than {} characters",
            Self::MIN_PASSWORD_CHARS
        );
        Ok(Credentials {
            user: Sha256::digest(user.as_bytes()).into(),
            password: Sha256::digest(password.as_bytes()).into(),
        })
    }

    /// The password from the environment or a mounted secret file (one
    /// trailing newline dropped); neither is an error naming both.
    pub fn from_sources(
        user: &str,
        password: Option<&str>,
        file: Option<&std::path::Path>,
    ) -> anyhow::Result<Credentials> {
        let from_file;
        let password = match (password, file) {
            (Some(p), _) => p,
            (None, Some(path)) => {
                from_file = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read CLAIMLINE_WEB_PASSWORD_FILE {}: {e}",
                        path.display()
                    )
                })?;
                from_file
                    .strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&from_file)
            }
            (None, None) => anyhow::bail!(
                "no web password: set CLAIMLINE_WEB_PASSWORD or CLAIMLINE_WEB_PASSWORD_FILE (there is no anonymous access)"
            ),
        };
        Credentials::new(user, password)
    }

    /// Both compared whatever the first gives, each in constant time (the
    /// digests have one length whatever was typed).
    pub(crate) fn check(&self, user: &str, password: &str) -> bool {
        let u: [u8; 32] = Sha256::digest(user.as_bytes()).into();
        let p: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        (self.user.ct_eq(&u) & self.password.ct_eq(&p)).into()
    }
}

/// Signs and checks session cookies: `<expiry unix secs>.<hex HMAC>`.
pub(crate) struct Sessions {
    key: [u8; 32],
    lifetime: Duration,
}

type HmacSha256 = Hmac<Sha256>;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sessions {
    pub(crate) fn new(lifetime: Duration) -> anyhow::Result<Sessions> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key)
            .map_err(|e| anyhow::anyhow!("no randomness for the session key: {e}"))?;
        Ok(Sessions { key, lifetime })
    }

    fn mac(&self, expiry: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"claimline-web-session:");
        mac.update(expiry.to_string().as_bytes());
        mac
    }

    /// A new session's cookie value.
    pub(crate) fn issue(&self) -> String {
        let expiry = now_secs() + self.lifetime.as_secs();
        let tag = self.mac(expiry).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{expiry}.{hex}")
    }

    /// Whether a cookie value is one we signed and has not expired.
    pub(crate) fn valid(&self, value: &str) -> bool {
        let Some((expiry, hex)) = value.split_once('.') else {
            return false;
        };
        let Ok(expiry) = expiry.parse::<u64>() else {
            return false;
        };
        if expiry <= now_secs() || hex.len() != 64 {
            return false;
        }
        let Some(tag) = (0..32)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        self.mac(expiry).verify_slice(&tag).is_ok()
    }
}

/// The session cookie's value in a `Cookie` header, if any.
pub(crate) fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Failed sign-ins: at most `per_client` per client address and
/// `overall` in all in a window; past either, sign-ins are refused
/// (without checking the password) until the window ends.
pub(crate) struct Throttle {
    window: Duration,
    per_client: u32,
    overall: u32,
    state: Mutex<ThrottleState>,
}

struct ThrottleState {
    started: Instant,
    overall: u32,
    clients: HashMap<IpAddr, u32>,
}

impl Throttle {
    pub(crate) fn new(window: Duration, per_client: u32, overall: u32) -> Throttle {
        Throttle {
            window,
            per_client,
            overall,
            state: Mutex::new(ThrottleState {
                started: Instant::now(),
                overall: 0,
                clients: HashMap::new(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ThrottleState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.started.elapsed() >= self.window {
            s.started = Instant::now();
            s.overall = 0;
            s.clients.clear();
        }
        f(&mut s)
    }

    /// Whether `client` may try now.
    pub(crate) fn allowed(&self, client: IpAddr) -> bool {
        self.with(|s| {
            s.overall < self.overall
                && s.clients.get(&client).copied().unwrap_or(0) < self.per_client
        })
    }

    pub(crate) fn failed(&self, client: IpAddr) {
        self.with(|s| {
            s.overall = s.overall.saturating_add(1);
            *s.clients.entry(client).or_default() += 1;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_user_and_password_sign_in() {
        let c = Credentials::new("revenue", "correct horse battery").unwrap();
        assert!(c.check("revenue", "correct horse battery"));
        assert!(!c.check("revenue", "correct horse batter"));
        assert!(!c.check("revenu", "correct horse battery"));
        assert!(Credentials::new("revenue", "short").is_err());
        assert!(Credentials::new(" ", "correct horse battery").is_err());
    }

    #[test]
    fn a_session_cookie_is_valid_only_as_signed_and_until_it_expires() {
        let s = Sessions::new(Duration::from_secs(60)).unwrap();
        let v = s.issue();
        assert!(s.valid(&v));
        let (expiry, tag) = v.split_once('.').unwrap();
        let later = format!("{}.{tag}", expiry.parse::<u64>().unwrap() + 1000);
        assert!(!s.valid(&later), "another expiry under the same tag");
        assert!(!Sessions::new(Duration::from_secs(60)).unwrap().valid(&v));
        assert!(!s.valid("garbage"));
        let expired = Sessions {
            key: s.key,
            lifetime: Duration::ZERO,
        };
        assert!(!expired.valid(&expired.issue()));
        assert_eq!(
            cookie_value(&format!("a=b; {COOKIE}={v}; c=d")),
            Some(v.as_str())
        );
    }

    #[test]
    fn failed_sign_ins_are_limited_per_client_and_overall() {
        let t = Throttle::new(Duration::from_secs(3600), 2, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        t.failed(a);
        assert!(t.allowed(a));
        t.failed(a);
        assert!(!t.allowed(a), "per client");
        assert!(t.allowed(b));
        t.failed(b);
        assert!(!t.allowed(b), "overall");
        let t = Throttle::new(Duration::ZERO, 1, 1);
        t.failed(a);
        assert!(t.allowed(a), "a new window");
    }
}
