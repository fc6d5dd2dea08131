//! Times as people type them on a command line.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{QueryError, Result};

/// Parse a time a user typed: RFC 3339 (`2024-05-01T08:00:00Z`, any offset), a date
/// (`2024-05-01`, midnight UTC) or `2024-05-01 08:00:00[.fff]` (UTC).
///
/// ```
/// use trail_query::time::parse_user_time;
/// let t = parse_user_time("2024-05-01T10:00:00+02:00").unwrap();
/// assert_eq!(t, parse_user_time("2024-05-01 08:00:00").unwrap());
/// assert_eq!(parse_user_time("2024-05-01").unwrap().to_rfc3339(), "2024-05-01T00:00:00+00:00");
/// assert!(parse_user_time("yesterday").is_err());
/// ```
pub fn parse_user_time(s: &str) -> Result<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(QueryError::Usage(format!(
        "`{}` is not a time; write 2024-05-01, 2024-05-01T08:00:00Z or 2024-05-01 08:00:00 (UTC)",
        s.escape_debug()
    )))
}
