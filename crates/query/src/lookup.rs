//! `LookupEvents` over a local store.
//!
//! Attributes use the vendor's keys and match exactly, as the vendor documents; unlike the
//! hosted API, any number of attributes may be given. Different keys must all match (AND);
//! several values for the same key match any of them (OR).
//!
//! | key | field |
//! |---|---|
//! | `ServiceName` | `serviceName` |
//! | `EventName` | `eventName` |
//! | `User` | `userIdentity.userName` |
//! | `EventId` | `eventId` |
//! | `ResourceType` | `resourceType` |
//! | `ResourceName` | `resourceName` |
//! | `EventRW` | `eventRW` (`Read`, `Write`) |
//! | `EventAccessKeyId` | `userIdentity.accessKeyId` |
//! | `SourceIpAddress` | `sourceIpAddress` |
//! | `EventType` | `eventType` |
//! | `RoleName` | the role of an assumed-role session: `userIdentity.sessionContext.sessionIssuer.userName`, or the role in `userIdentity.arn` (`...:assumed-role/<RoleName>/<session>`) |
//!
//! Results are ordered by `eventTime` then `eventId`, newest first (`backward`, the default)
//! or oldest first (`forward`). The next-page token holds the position of the last event
//! returned (its time and id), not an offset, so it stays valid while the store grows: events
//! ingested later never shift a page or repeat one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datafusion::arrow::array::{Array, RecordBatch, StringViewArray, TimestampMicrosecondArray};

use crate::{Engine, QueryError, Result};

/// The keys `trail lookup --attr` accepts.
pub const KEYS: [&str; 11] = [
    "ServiceName",
    "EventName",
    "User",
    "EventId",
    "ResourceType",
    "ResourceName",
    "EventRW",
    "EventAccessKeyId",
    "SourceIpAddress",
    "EventType",
    "RoleName",
];

/// Most results per page.
pub const MAX_RESULTS_LIMIT: usize = 10_000;

/// Which end of the time range comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (the vendor's order).
    #[default]
    Backward,
}

/// A lookup.
#[derive(Debug, Clone, Default)]
pub struct LookupRequest {
    /// `(key, value)` pairs; keys from [`KEYS`], any case.
    pub attributes: Vec<(String, String)>,
    /// Inclusive start, microseconds since the epoch (UTC).
    pub start_us: Option<i64>,
    /// Exclusive end, microseconds since the epoch (UTC).
    pub end_us: Option<i64>,
    pub max_results: usize,
    pub next_token: Option<String>,
    pub direction: Direction,
}

/// One page of results.
#[derive(Debug)]
pub struct LookupPage {
    /// Columns: eventTime, eventId, eventName, eventRW, user, sourceIpAddress, acsRegion,
    /// errorCode, raw (the original record).
    pub batches: Vec<RecordBatch>,
    /// Pass this as `next_token` for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

fn predicate(key: &str, value: &str) -> Result<String> {
    let v = literal_text(value);
    let canonical = KEYS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .ok_or_else(|| {
            QueryError::Usage(format!(
                "unknown lookup attribute `{key}`; use one of: {}",
                KEYS.join(", ")
            ))
        })?;
    Ok(match *canonical {
        "ServiceName" => format!("\"serviceName\" = {v}"),
        "EventName" => format!("\"eventName\" = {v}"),
        "User" => format!("\"userIdentity\".\"userName\" = {v}"),
        "EventId" => format!("\"eventId\" = {v}"),
        "ResourceType" => format!("\"resourceType\" = {v}"),
        "ResourceName" => format!("\"resourceName\" = {v}"),
        "EventRW" => format!("\"eventRW\" = {v}"),
        "EventAccessKeyId" => format!("\"userIdentity\".\"accessKeyId\" = {v}"),
        "SourceIpAddress" => format!("\"sourceIpAddress\" = {v}"),
        "EventType" => format!("\"eventType\" = {v}"),
        _ => format!(
            "(\"userIdentity\".\"sessionContext\".\"sessionIssuer\".\"userName\" = {v} OR \
             split_part(split_part(\"userIdentity\".\"arn\", ':assumed-role/', 2), '/', 1) = {v})"
        ),
    })
}

/// Always a quoted string (an id of digits is still text).
fn literal_text(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn decode_token(t: &str) -> Result<(i64, String)> {
    let bad = || {
        QueryError::Usage(format!(
            "`{t}` is not a next-page token from this lookup; start again without --next-token"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(t.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix("v1:").ok_or_else(bad)?;
    let (ts, id) = rest.split_once(':').ok_or_else(bad)?;
    Ok((ts.parse().map_err(|_| bad())?, id.to_owned()))
}

fn encode_token(ts: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{ts}:{id}"))
}

/// The SQL a lookup runs (without its page limit).
pub fn lookup_sql(req: &LookupRequest) -> Result<String> {
    let mut by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in &req.attributes {
        by_key
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(predicate(k, v)?);
    }
    let mut conds: Vec<String> = by_key
        .into_values()
        .map(|ps| {
            if ps.len() == 1 {
                ps.into_iter().next().unwrap_or_default()
            } else {
                format!("({})", ps.join(" OR "))
            }
        })
        .collect();
    let ts = |us: i64| format!("to_timestamp_micros({us})");
    if let Some(s) = req.start_us {
        conds.push(format!("\"eventTime\" >= {}", ts(s)));
    }
    if let Some(e) = req.end_us {
        conds.push(format!("\"eventTime\" < {}", ts(e)));
    }
    let (cmp, order) = match req.direction {
        Direction::Backward => ("<", "DESC"),
        Direction::Forward => (">", "ASC"),
    };
    if let Some(tok) = &req.next_token {
        let (t, id) = decode_token(tok)?;
        conds.push(format!(
            "(\"eventTime\" {cmp} {} OR (\"eventTime\" = {} AND coalesce(\"eventId\", '') {cmp} {}))",
            ts(t),
            ts(t),
            literal_text(&id)
        ));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    Ok(format!(
        "SELECT \"eventTime\", coalesce(\"eventId\", '') AS \"eventId\", \"eventName\", \"eventRW\", \
         \"userIdentity\".\"userName\" AS \"user\", \"sourceIpAddress\", \"acsRegion\", \
         \"errorCode\", raw FROM events{filter} \
         ORDER BY \"eventTime\" {order}, coalesce(\"eventId\", '') {order}"
    ))
}

/// Run a lookup.
pub async fn lookup(engine: &Engine, req: &LookupRequest) -> Result<LookupPage> {
    let max = req.max_results.clamp(1, MAX_RESULTS_LIMIT);
    let sql = format!("{} LIMIT {}", lookup_sql(req)?, max + 1);
    let mut batches = engine.collect(&sql).await?;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if total <= max {
        return Ok(LookupPage {
            batches,
            next_token: None,
        });
    }
    // Drop the probe row, and make a token of the last row kept.
    let mut kept = Vec::new();
    let mut left = max;
    for b in batches.drain(..) {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        kept.push(b.slice(0, take));
        left -= take;
    }
    let last = kept
        .iter()
        .rev()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| QueryError::Usage("empty page".into()))?;
    let row = last.num_rows() - 1;
    let times = last
        .column(0)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| QueryError::Usage("eventTime has an unexpected type".into()))?;
    let id_col = last.column(1);
    let id = if let Some(a) = id_col.as_any().downcast_ref::<StringViewArray>() {
        a.value(row).to_owned()
    } else if let Some(a) = id_col
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
    {
        a.value(row).to_owned()
    } else {
        return Err(QueryError::Usage("eventId has an unexpected type".into()));
    };
    let token = (!times.is_null(row)).then(|| encode_token(times.value(row), &id));
    Ok(LookupPage {
        batches: kept,
        next_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = encode_token(1_600_000_000_000_000, "ab'c");
        assert_eq!(
            decode_token(&t).ok(),
            Some((1_600_000_000_000_000, "ab'c".to_owned()))
        );
        assert!(decode_token("garbage!").is_err());
    }

    #[test]
    fn unknown_key_is_explained() {
        let req = LookupRequest {
            attributes: vec![("Colour".into(), "red".into())],
            ..Default::default()
        };
        let e = lookup_sql(&req)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown lookup attribute `Colour`"), "{e}");
    }

    #[test]
    fn values_are_quoted() {
        let req = LookupRequest {
            attributes: vec![("user".into(), "x' OR 1=1 --".into())],
            ..Default::default()
        };
        let sql = lookup_sql(&req).unwrap_or_default();
        assert!(sql.contains("= 'x'' OR 1=1 --'"), "{sql}");
    }
}
