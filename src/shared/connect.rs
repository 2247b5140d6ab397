//! Connecting to the shared store's server: libpq's URL forms and its usual
//! environment (`PGUSER`, `PGPASSWORD`, `~/.pgpass` or `PGPASSFILE`), one
//! clear line for every way connecting fails, and never a password in any
//! message.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Result};
use postgres::config::{Config, Host};
use postgres::error::SqlState;

/// Whether a `--store` value names a shared store rather than a folder.
pub fn is_shared_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The URL with its password (in the user part or a `password=` parameter)
/// replaced by `***`.
pub fn shown_url(url: &str) -> String {
    let mut shown = url.to_string();
    if let Some(scheme_end) = shown.find("://") {
        let rest = scheme_end + 3;
        let authority_end = shown[rest..]
            .find(['/', '?'])
            .map_or(shown.len(), |i| rest + i);
        if let Some(at) = shown[rest..authority_end].rfind('@') {
            let userinfo = rest..rest + at;
            if let Some(colon) = shown[userinfo.clone()].find(':') {
                shown.replace_range(rest + colon + 1..userinfo.end, "***");
            }
        }
    }
    redact_parameter(&shown)
}

fn redact_parameter(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let value = at + "password=".len();
        out.push_str(&rest[..value]);
        out.push_str("***");
        let end = rest[value..]
            .find(['&', ' '])
            .map_or(rest.len(), |i| value + i);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Connects; returns the client and the URL as it may be shown.
pub fn connect(url: &str) -> Result<(postgres::Client, String)> {
    let shown = shown_url(url);
    let (url, tls) = super::tls::split_url(url, &shown)?;
    let mut config = Config::from_str(&url).map_err(|e| {
        anyhow!("{shown} is not a PostgreSQL URL this build can read ({}); the form is postgres://USER@HOST:PORT/DATABASE", redact_parameter(&e.to_string()))
    })?;
    config.ssl_mode(tls.client_mode());
    fill_from_environment(&mut config);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let client = match tls.connector(&shown)? {
        Some(connector) => config.connect(connector),
        None => config.connect(postgres::NoTls),
    }
    .map_err(|e| explain_connecting(&shown, &e))?;
    Ok((client, shown))
}

/// What libpq would take from the environment when the URL leaves it out.
fn fill_from_environment(config: &mut Config) {
    if config.get_user().is_none() {
        if let Some(user) = std::env::var("PGUSER")
            .ok()
            .or_else(|| std::env::var("USER").ok())
        {
            config.user(&user);
        }
    }
    if config.get_password().is_none() {
        let password = std::env::var("PGPASSWORD")
            .ok()
            .or_else(|| password_from_pgpass(config));
        if let Some(password) = password {
            config.password(password);
        }
    }
}

/// The first `~/.pgpass` line (`host:port:database:user:password`, `*`
/// matching anything) that matches the connection.
fn password_from_pgpass(config: &Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config
            .get_dbname()
            .unwrap_or(config.get_user().unwrap_or("")),
        config.get_user().unwrap_or(""),
    ];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass_line(line);
            let matches = fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

/// A `.pgpass` line's fields: `:` separates, `\:` and `\\` escape.
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// One line saying what failed and what to do, from a client error.
pub fn explain(shown: &str, doing: &str, e: &postgres::Error) -> anyhow::Error {
    let Some(db) = e.as_db_error() else {
        if e.is_closed() {
            return anyhow!("the connection to {shown} closed while {doing}: the server stopped or restarted; run the command again once it is up");
        }
        return anyhow!("cannot reach the PostgreSQL server of {shown} while {doing} ({}); is it running, and are host and port right?", source_text(e));
    };
    let code = db.code();
    let message = db.message();
    if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        anyhow!("the server of {shown} refused the login ({message}); check the user and the password (PGPASSWORD or ~/.pgpass)")
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        anyhow!("{message} on the server of {shown}; create it (createdb NAME), then run: statectl init URL")
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        anyhow!("the role of {shown} may not do this ({doing}: {message}); nothing was changed; use a role with write rights, or only read with this one")
    } else if code.code().starts_with("08") || code.code().starts_with("57") {
        anyhow!("the server of {shown} stopped while {doing} ({message}); run the command again once it is up")
    } else {
        anyhow!("{doing} on {shown} failed: {message}")
    }
}

/// Why connecting failed; a TLS failure says what to change.
fn explain_connecting(shown: &str, e: &postgres::Error) -> anyhow::Error {
    let cause = source_text(e);
    let mut error: &dyn std::error::Error = e;
    let tls = loop {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            break Some(tls);
        }
        // An I/O error's source skips the error it wraps: look inside.
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if wrapped.is_some() {
            break wrapped;
        }
        match error.source() {
            Some(next) => error = next,
            None => break None,
        }
    };
    if let Some(tls) = tls {
        return anyhow!("the server of {shown} did not prove who it is ({tls}); check that sslrootcert (or $PGSSLROOTCERT) names the CA that signed its certificate and that the certificate names the host (verify-ca checks only the CA)");
    }
    if cause.contains("server does not support TLS") {
        return anyhow!("the server of {shown} does not offer TLS, and the URL's sslmode requires it; turn ssl on in its postgresql.conf, or on a trusted network use sslmode=prefer");
    }
    explain(shown, "connecting", e)
}

/// The innermost cause, which names what went wrong (connection refused,
/// timed out, name not known), without the URL.
fn source_text(e: &postgres::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    redact_parameter(&cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            shown_url("postgres://ann:s3cret@db:5432/replay"),
            "postgres://ann:***@db:5432/replay"
        );
        assert_eq!(
            shown_url("postgres://ann@db/replay?password=s3cret&sslmode=disable"),
            "postgres://ann@db/replay?password=***&sslmode=disable"
        );
        assert_eq!(shown_url("postgres://db/replay"), "postgres://db/replay");
        assert_eq!(
            shown_url("postgresql://a:b:c@h/d"),
            "postgresql://a:***@h/d"
        );
    }

    #[test]
    fn pgpass_lines_unescape() {
        assert_eq!(
            split_pgpass_line(r"h:5432:*:ann:pa\:ss\\w"),
            vec!["h", "5432", "*", "ann", r"pa:ss\w"]
        );
    }
}
