//! Time windows as users write them (`--since 2h`, `since="7d"`).

use anyhow::{anyhow, Result};

/// Parses a duration such as `30s`, `15m`, `2h`, `7d` or `1h 30m` into
/// milliseconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<i64> {
    let bad = || anyhow!("bad {flag} '{text}': write a number and a unit, e.g. 30s, 15m, 2h or 7d");
    let duration = humantime::parse_duration(text).map_err(|_| bad())?;
    i64::try_from(duration.as_millis()).map_err(|_| bad())
}

/// The start of a window that ends now: `now - duration` in ms since the
/// epoch (`flag` names the option in messages).
pub fn cutoff(flag: &str, text: &str) -> Result<i64> {
    Ok(crate::store::now_ms() - parse_duration(flag, text)?)
}
