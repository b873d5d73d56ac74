//! The Postgres URL: it may hold a password, which nothing prints.

use std::fmt;
use std::str::FromStr;

/// A Postgres URL. It may hold a password, so neither `Debug` nor
/// `Display` prints it: they show the URL with the password replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL if it is a Postgres one, else an error that does not quote it.
    pub fn check(&self) -> anyhow::Result<&str> {
        if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            Ok(&self.0)
        } else {
            anyhow::bail!("DATABASE_URL must be a postgres:// or postgresql:// URL")
        }
    }

    fn redacted(&self) -> String {
        // scheme://user:password@host... -> scheme://user:***@host...
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return "<unparseable URL>".to_owned();
        };
        let (auth, host) = match rest.rsplit_once('@') {
            Some((auth, host)) => (Some(auth), host),
            None => (None, rest),
        };
        // libpq also takes the password as a query parameter.
        let host = match host.split_once('?') {
            Some((path, query)) => {
                let params: Vec<&str> = query
                    .split('&')
                    .map(|p| {
                        if p.starts_with("password=") {
                            "password=***"
                        } else {
                            p
                        }
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => host.to_owned(),
        };
        match auth.map(|a| a.split_once(':').map_or(a, |(user, _)| user)) {
            Some(user) if auth.is_some_and(|a| a.contains(':')) => {
                format!("{scheme}://{user}:***@{host}")
            }
            Some(user) => format!("{scheme}://{user}@{host}"),
            None => format!("{scheme}://{host}"),
        }
    }
}

/// Parsing never fails: a command-line parser would quote the rejected
/// value, password and all. [`DatabaseUrl::check`] says what is wrong.
impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_never_print_their_password() {
        let url: DatabaseUrl = "postgres://app:s3cr3t@db:5432/claims?sslmode=require"
            .parse()
            .unwrap();
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("app:***@db:5432/claims"), "{shown}");
        }
        let url: DatabaseUrl = "postgresql://p@ss:w@rd@db/x".parse().unwrap();
        assert!(!format!("{url:?}").contains("w@rd"));
        let url: DatabaseUrl = "postgres://db/x?user=a&password=s3cr3t&sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://db/x?user=a&password=***&sslmode=require"
        );
        let url: DatabaseUrl = "postgres://db/x".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://db/x");
        assert_eq!(url.check().unwrap(), "postgres://db/x");
        let mysql: DatabaseUrl = "mysql://u:s3cr3t@db/x".parse().unwrap();
        let err = mysql.check().unwrap_err().to_string();
        assert!(
            err.contains("DATABASE_URL") && !err.contains("s3cr3t"),
            "{err}"
        );
    }
}
