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

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};

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
    pub next_token: Option<NextToken>,
    pub direction: Direction,
}

/// Where the next page starts: the time and id of the last event returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextToken {
    time_us: i64,
    event_id: String,
}

impl std::fmt::Display for NextToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.time_us, self.event_id)))
    }
}

impl std::str::FromStr for NextToken {
    type Err = QueryError;

    fn from_str(t: &str) -> Result<NextToken> {
        let bad = || {
            QueryError::Usage(format!(
                "`{}` is not a next-page token from a lookup; start again without --next-token",
                t.escape_debug()
            ))
        };
        let bytes = URL_SAFE_NO_PAD.decode(t.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let rest = text.strip_prefix("v1:").ok_or_else(bad)?;
        let (ts, id) = rest.split_once(':').ok_or_else(bad)?;
        Ok(NextToken {
            time_us: ts.parse().map_err(|_| bad())?,
            event_id: id.to_owned(),
        })
    }
}

/// One event of a page: the fields a summary shows, and the record as it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupEvent {
    pub event_time: DateTime<Utc>,
    /// Empty when the record had none.
    pub event_id: String,
    pub event_name: Option<String>,
    pub event_rw: Option<String>,
    pub user_name: Option<String>,
    pub source_ip: Option<String>,
    pub region: Option<String>,
    pub error_code: Option<String>,
    /// The original record, byte for byte.
    pub raw: String,
}

/// One page of results.
#[derive(Debug, Default)]
pub struct LookupPage {
    pub events: Vec<LookupEvent>,
    /// Pass this as `next_token` for the next page; `None` on the last page.
    pub next_token: Option<NextToken>,
}

impl LookupPage {
    /// The page in the LookupEvents response shape: `{"Events": [records...], "NextToken":
    /// ..., "StartTime": ..., "EndTime": ...}`, each record as it was stored.
    pub fn to_json(&self, start: Option<&str>, end: Option<&str>) -> serde_json::Value {
        let events: Vec<serde_json::Value> = self
            .events
            .iter()
            .map(|e| {
                serde_json::from_str(&e.raw)
                    .unwrap_or_else(|_| serde_json::Value::String(e.raw.clone()))
            })
            .collect();
        serde_json::json!({
            "Events": events,
            "NextToken": self.next_token.as_ref().map(ToString::to_string),
            "StartTime": start,
            "EndTime": end,
        })
    }

    /// The summary columns of the page as one batch (for printing as a table).
    pub fn summary(&self) -> Result<RecordBatch> {
        let text = |f: &dyn Fn(&LookupEvent) -> Option<&str>| -> ArrayRef {
            Arc::new(self.events.iter().map(f).collect::<StringArray>())
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "eventTime",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("eventId", DataType::Utf8, false),
            Field::new("eventName", DataType::Utf8, true),
            Field::new("eventRW", DataType::Utf8, true),
            Field::new("user", DataType::Utf8, true),
            Field::new("sourceIpAddress", DataType::Utf8, true),
            Field::new("acsRegion", DataType::Utf8, true),
            Field::new("errorCode", DataType::Utf8, true),
        ]));
        Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        self.events.iter().map(|e| e.event_time.timestamp_micros()),
                    )
                    .with_timezone("UTC"),
                ),
                text(&|e| Some(e.event_id.as_str())),
                text(&|e| e.event_name.as_deref()),
                text(&|e| e.event_rw.as_deref()),
                text(&|e| e.user_name.as_deref()),
                text(&|e| e.source_ip.as_deref()),
                text(&|e| e.region.as_deref()),
                text(&|e| e.error_code.as_deref()),
            ],
        )?)
    }
}

/// The key of a lookup attribute as the API spells it, for any spelling of it.
fn canonical_key(key: &str) -> Result<&'static str> {
    KEYS.iter()
        .find(|k| k.eq_ignore_ascii_case(key.trim()))
        .copied()
        .ok_or_else(|| {
            QueryError::Usage(format!(
                "unknown lookup attribute `{}`; use one of: {}",
                key.escape_debug(),
                KEYS.join(", ")
            ))
        })
}

/// Parse `Key=Value` (the key in any case) into the API's key and the value.
pub fn parse_attribute(s: &str) -> Result<(String, String)> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        QueryError::Usage(format!(
            "`{}` must be Key=Value (e.g. EventName=CreateUser)",
            s.escape_debug()
        ))
    })?;
    Ok((canonical_key(k)?.to_owned(), v.to_owned()))
}

fn predicate(key: &str, value: &str) -> Result<String> {
    let v = literal_text(value);
    Ok(match canonical_key(key)? {
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
        conds.push(format!(
            "(\"eventTime\" {cmp} {} OR (\"eventTime\" = {} AND coalesce(\"eventId\", '') {cmp} {}))",
            ts(tok.time_us),
            ts(tok.time_us),
            literal_text(&tok.event_id)
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

/// A column of a result as text (any string type).
fn text_column(batch: &RecordBatch, i: usize) -> Result<Vec<Option<String>>> {
    let col = cast(batch.column(i), &DataType::Utf8)?;
    let a = col.as_string::<i32>();
    Ok((0..a.len())
        .map(|r| a.is_valid(r).then(|| a.value(r).to_owned()))
        .collect())
}

fn events_of(batch: &RecordBatch) -> Result<Vec<LookupEvent>> {
    if batch.num_columns() != 9 {
        return Err(QueryError::Internal(format!(
            "a lookup result has {} columns, not 9",
            batch.num_columns()
        )));
    }
    let times = cast(
        batch.column(0),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let times = times.as_primitive::<TimestampMicrosecondType>();
    let c: Vec<Vec<Option<String>>> = (1..9)
        .map(|i| text_column(batch, i))
        .collect::<Result<_>>()?;
    (0..batch.num_rows())
        .map(|r| {
            Ok(LookupEvent {
                event_time: DateTime::from_timestamp_micros(times.value(r))
                    .ok_or_else(|| QueryError::Internal("an eventTime out of range".into()))?,
                event_id: c[0][r].clone().unwrap_or_default(),
                event_name: c[1][r].clone(),
                event_rw: c[2][r].clone(),
                user_name: c[3][r].clone(),
                source_ip: c[4][r].clone(),
                region: c[5][r].clone(),
                error_code: c[6][r].clone(),
                raw: c[7][r].clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Run a lookup.
pub async fn lookup(engine: &Engine, req: &LookupRequest) -> Result<LookupPage> {
    let max = req.max_results.clamp(1, MAX_RESULTS_LIMIT);
    let sql = format!("{} LIMIT {}", lookup_sql(req)?, max + 1);
    let mut events = Vec::new();
    for b in engine.collect(&sql).await? {
        events.extend(events_of(&b)?);
    }
    if events.len() <= max {
        return Ok(LookupPage {
            events,
            next_token: None,
        });
    }
    // Drop the probe row, and make a token of the last row kept.
    events.truncate(max);
    let next_token = events.last().map(|e| NextToken {
        time_us: e.event_time.timestamp_micros(),
        event_id: e.event_id.clone(),
    });
    Ok(LookupPage { events, next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = NextToken {
            time_us: 1_600_000_000_000_000,
            event_id: "ab'c".into(),
        };
        assert_eq!(t.to_string().parse::<NextToken>().ok(), Some(t));
        assert!("garbage!".parse::<NextToken>().is_err());
        assert!(parse_attribute("eventname=X").is_ok_and(|(k, _)| k == "EventName"));
        assert!(parse_attribute("Colour=red").is_err());
        assert!(parse_attribute("EventName").is_err());
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
