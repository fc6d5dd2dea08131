//! From parsed events to Arrow record batches in the canonical schema.
//!
//! Normalization rules (documented in the README's "Event mapping" section):
//! * `eventTime` must be an RFC 3339 time; it is stored as UTC microseconds. Without it the record
//!   is quarantined, unless the caller named a fallback (Logstash's `@timestamp`).
//! * `eventRW` when absent: from CloudTrail's `readOnly` (true = `Read`, false = `Write`), else
//!   from the event name: `Describe`, `List`, `Get`, `Query`, `Check`, `Lookup`, `Search`, `Head`,
//!   `Scan` and `Select` prefixes are `Read`, anything else `Write`.
//! * `serviceName` when absent: the first label of `eventSource` (`ec2.amazonaws.com` → `ec2`).
//! * `dialect`: `cloudtrail` when CloudTrail spellings are present or `eventSource` ends in
//!   `.amazonaws.com`, else `actiontrail`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, RecordBatch, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::Fields;
use chrono::{DateTime, NaiveDate};
use trail_store::layout::{MAX_REGION_BYTES, PartitionKey};
use trail_store::schema;

use crate::event::Event;

/// What makes an otherwise well-formed record unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not an event we store: an insight event (counted, not quarantined).
    Insight,
    /// A bad record, with the reason.
    Bad(String),
}

/// Options that change how records are read.
#[derive(Debug, Clone, Default)]
pub struct NormalizeOptions {
    /// Use Logstash's `@timestamp` when `eventTime` is missing.
    pub at_timestamp_fallback: bool,
}

/// The dedup key of an event: its id scoped by the account that received it, so two accounts'
/// copies of a shared event are both kept while re-deliveries to one account collapse.
/// Records without an id are keyed by their full text.
pub fn dedup_key(
    recipient: Option<&str>,
    account: Option<&str>,
    event_id: Option<&str>,
    raw: &str,
) -> u128 {
    use xxhash_rust::xxh3::Xxh3;
    let mut h = Xxh3::new();
    match event_id.filter(|s| !s.is_empty()) {
        Some(id) => {
            let scope = recipient
                .filter(|s| !s.is_empty())
                .or(account.filter(|s| !s.is_empty()))
                .unwrap_or("");
            h.update(b"id\0");
            h.update(scope.as_bytes());
            h.update(b"\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"raw\0");
            h.update(raw.as_bytes());
        }
    }
    h.digest128()
}

const READ_PREFIXES: [&str; 10] = [
    "Describe", "List", "Get", "Query", "Check", "Lookup", "Search", "Head", "Scan", "Select",
];

/// `Read` or `Write` for an event name, by its verb.
pub fn derive_rw(event_name: &str) -> &'static str {
    if READ_PREFIXES.iter().any(|p| event_name.starts_with(p)) {
        "Read"
    } else {
        "Write"
    }
}

/// Parse an event time into UTC microseconds. Accepted: RFC 3339 (`2020-12-17T06:55:12Z`, any
/// offset), and the forms SIEM and log-service exports write, taken as UTC: a date and time
/// without a zone (`2024-11-25 17:51:21`, `2024-11-25 17:51:21.000000000`, or with a `T`), and
/// epoch milliseconds (13 digits, as text or a number). Epoch seconds are refused: ten digits
/// could as well be a truncated value, and a wrong guess would file the event decades away.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(x) = DateTime::parse_from_rfc3339(t) {
        return Ok(x.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc().timestamp_micros());
        }
    }
    if t.len() == 13
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(ms) = t.parse::<i64>()
    {
        return Ok(ms * 1000);
    }
    Err(format!(
        "eventTime `{}` is not a time: use RFC 3339 (2020-12-17T06:55:12Z), a UTC date and time \
         (2020-12-17 06:55:12[.fff]) or epoch milliseconds",
        truncate(s, 64)
    ))
}

fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        Cow::Borrowed(s)
    } else {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Cow::Owned(format!("{}…", &s[..end]))
    }
}

/// The UTC date of a time in microseconds.
pub fn date_of(us: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_micros(us).map(|t| t.date_naive())
}

const N_STRINGS: usize = schema::STRINGS_BEFORE_TIME.len()
    + schema::STRINGS_AFTER_TIME.len()
    + schema::STRINGS_AFTER_GLOBAL.len()
    + schema::STRINGS_AFTER_IDENTITY.len();

/// Column builders for one partition's events.
pub struct BatchBuilder {
    strings: Vec<StringBuilder>,
    time: TimestampMicrosecondBuilder,
    is_global: BooleanBuilder,
    identity: Vec<StringBuilder>,
    identity_valid: NullBufferBuilder,
    context_valid: NullBufferBuilder,
    attrs: Vec<StringBuilder>,
    attrs_valid: NullBufferBuilder,
    issuer: Vec<StringBuilder>,
    issuer_valid: NullBufferBuilder,
    /// Dedup keys, one per row.
    pub keys: Vec<u128>,
    /// Approximate bytes held.
    pub bytes: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(&Capacity::default())
    }
}

/// How much a builder's columns held: rows, and text bytes per string column. A decoder sizes
/// each partition's next builder from what the last one for that partition held, so columns
/// are allocated once instead of growing (each doubling copies what they hold: for the `raw`
/// column, the whole record text again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capacity {
    rows: usize,
    /// Bytes per string builder: `strings`, `identity`, `attrs`, `issuer`, in that order.
    /// Empty: the builders' own default capacities.
    bytes: Vec<usize>,
}

impl Capacity {
    /// This capacity with room for `1/8` more, as the next chunk rarely has exactly as many
    /// rows.
    pub fn with_headroom(&self) -> Capacity {
        let more = |n: usize| n.saturating_add(n / 8);
        Capacity {
            rows: more(self.rows),
            bytes: self.bytes.iter().map(|&b| more(b)).collect(),
        }
    }
}

impl BatchBuilder {
    /// Builders sized for `cap` (the default capacities where it says nothing).
    pub fn with_capacity(cap: &Capacity) -> Self {
        let rows = cap.rows;
        let mut bytes = cap.bytes.iter().copied();
        let mut sb = |n| {
            (0..n)
                .map(|_| match bytes.next() {
                    Some(b) => StringBuilder::with_capacity(rows, b),
                    None => StringBuilder::new(),
                })
                .collect::<Vec<_>>()
        };
        BatchBuilder {
            strings: sb(N_STRINGS),
            identity: sb(schema::USER_IDENTITY_FIELDS.len()),
            attrs: sb(schema::ATTRIBUTES_FIELDS.len()),
            issuer: sb(schema::SESSION_ISSUER_FIELDS.len()),
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            is_global: BooleanBuilder::with_capacity(rows),
            identity_valid: NullBufferBuilder::new(rows),
            context_valid: NullBufferBuilder::new(rows),
            attrs_valid: NullBufferBuilder::new(rows),
            issuer_valid: NullBufferBuilder::new(rows),
            keys: Vec::with_capacity(rows),
            bytes: 0,
        }
    }

    /// What the columns hold now: the capacity a builder for as many rows again needs.
    pub fn held(&self) -> Capacity {
        Capacity {
            rows: self.len(),
            bytes: [&self.strings, &self.identity, &self.attrs, &self.issuer]
                .into_iter()
                .flatten()
                .map(|b| b.values_slice().len())
                .collect(),
        }
    }
}

/// A record checked and ready to append: its partition, time and derived values, all borrowed
/// from the event (nothing is allocated per record here).
pub struct Checked<'e> {
    /// The region, trimmed; `None` when missing or empty.
    pub region: Option<&'e str>,
    /// The UTC date of eventTime.
    pub date: NaiveDate,
    time_us: i64,
    event_rw: Option<&'e str>,
    service_name: Option<&'e str>,
    dialect: &'static str,
}

impl Checked<'_> {
    /// The partition this event belongs to.
    pub fn key(&self) -> PartitionKey {
        PartitionKey::new(self.region, self.date)
    }
}

/// Check a parsed event and work out its partition and derived fields.
pub fn check<'e>(e: &'e Event<'_>, opts: &NormalizeOptions) -> Result<Checked<'e>, Rejection> {
    let is_insight = e.is_insight
        || e.event_category.as_deref() == Some("Insight")
        || matches!(
            e.event_type.as_deref(),
            Some("ActionTrailInsight" | "AwsCloudTrailInsight")
        );
    if is_insight {
        return Err(Rejection::Insight);
    }
    let time_text = match (&e.event_time, &e.at_timestamp) {
        (Some(t), _) => t,
        (None, Some(t)) if opts.at_timestamp_fallback => t,
        (None, Some(_)) => {
            return Err(Rejection::Bad(
                "missing eventTime; the record has Logstash's @timestamp: run again with \
                 --event-time-fallback to use it"
                    .into(),
            ));
        }
        (None, None) => return Err(Rejection::Bad("missing eventTime".into())),
    };
    let time_us = parse_time(time_text).map_err(Rejection::Bad)?;
    let date = date_of(time_us)
        .ok_or_else(|| Rejection::Bad(format!("eventTime `{time_text}` is out of range")))?;
    let region = e
        .acs_region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let Some(r) = region
        && r.len() > MAX_REGION_BYTES
    {
        return Err(Rejection::Bad(format!(
            "acsRegion is {} bytes long (`{}`); region names are at most {MAX_REGION_BYTES}",
            r.len(),
            truncate(r, 40).escape_debug()
        )));
    }
    let event_rw = match (e.event_rw.as_deref(), e.read_only, e.event_name.as_deref()) {
        (Some(rw), _, _) => Some(rw),
        (None, Some(true), _) => Some("Read"),
        (None, Some(false), _) => Some("Write"),
        (None, None, Some(name)) => Some(derive_rw(name)),
        (None, None, None) => None,
    };
    let service_name = match (e.service_name.as_deref(), e.event_source.as_deref()) {
        (Some(s), _) => Some(s),
        (None, Some(src)) if !src.is_empty() => src.split('.').next(),
        _ => None,
    };
    let cloudtrail = e.cloudtrail_keys
        || e.event_source
            .as_deref()
            .is_some_and(|s| s.ends_with(".amazonaws.com"));
    Ok(Checked {
        region,
        date,
        time_us,
        event_rw,
        service_name,
        dialect: if cloudtrail {
            "cloudtrail"
        } else {
            "actiontrail"
        },
    })
}

fn put(b: &mut StringBuilder, v: Option<&str>) {
    b.append_option(v);
}

impl BatchBuilder {
    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No rows yet.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Append one event (already [`check`]ed) with its original text.
    pub fn append(&mut self, e: &Event<'_>, c: &Checked<'_>, raw: &str) {
        let s = &mut self.strings;
        let mut i = 0;
        let mut next = |v: Option<&str>| {
            put(&mut s[i], v);
            i += 1;
        };
        // Before eventTime.
        next(e.event_id.as_deref());
        next(e.event_version.as_deref());
        next(e.event_source.as_deref());
        next(e.event_name.as_deref());
        next(e.event_type.as_deref());
        next(e.event_category.as_deref());
        next(c.event_rw);
        // After eventTime.
        next(c.region);
        next(c.service_name);
        next(e.api_version.as_deref());
        next(e.request_id.as_deref());
        // After isGlobal.
        next(e.source_ip_address.as_deref());
        next(e.user_agent.as_deref());
        // After userIdentity.
        next(e.error_code.as_deref());
        next(e.error_message.as_deref());
        next(e.request_parameters.map(|r| r.get()));
        next(e.response_elements.map(|r| r.get()));
        next(e.additional_event_data.map(|r| r.get()));
        next(e.referenced_resources.map(|r| r.get()));
        next(e.resource_type.as_deref());
        next(e.resource_name.as_deref());
        next(e.recipient_account_id.as_deref());
        next(e.vpc_id.as_deref());
        next(e.shared_event_id.as_deref());
        next(Some(c.dialect));
        next(Some(raw));
        debug_assert_eq!(i, N_STRINGS);

        self.time.append_value(c.time_us);
        self.is_global.append_option(e.is_global);

        let ui = e.user_identity.as_ref();
        macro_rules! id {
            ($builder:expr, $field:ident) => {
                put(&mut $builder, ui.and_then(|u| u.$field.as_deref()))
            };
        }
        id!(self.identity[0], kind);
        id!(self.identity[1], principal_id);
        id!(self.identity[2], account_id);
        id!(self.identity[3], access_key_id);
        id!(self.identity[4], user_name);
        id!(self.identity[5], arn);
        id!(self.identity[6], invoked_by);
        self.identity_valid.append(ui.is_some());
        self.context_valid
            .append(ui.is_some_and(|u| u.has_session_context));
        self.attrs_valid
            .append(ui.is_some_and(|u| u.has_attributes));
        id!(self.attrs[0], mfa_authenticated);
        id!(self.attrs[1], creation_date);
        let iss = ui.and_then(|u| u.issuer.as_ref());
        self.issuer_valid.append(iss.is_some());
        put(&mut self.issuer[0], iss.and_then(|i| i.kind.as_deref()));
        put(
            &mut self.issuer[1],
            iss.and_then(|i| i.principal_id.as_deref()),
        );
        put(&mut self.issuer[2], iss.and_then(|i| i.arn.as_deref()));
        put(
            &mut self.issuer[3],
            iss.and_then(|i| i.account_id.as_deref()),
        );
        put(
            &mut self.issuer[4],
            iss.and_then(|i| i.user_name.as_deref()),
        );

        self.keys.push(dedup_key(
            e.recipient_account_id.as_deref(),
            ui.and_then(|u| u.account_id.as_deref()),
            e.event_id.as_deref(),
            raw,
        ));
        self.bytes += 2 * raw.len() + 64;
    }

    /// Finish into a batch in [`schema::event_schema`] and the rows' dedup keys.
    pub fn finish(mut self) -> (RecordBatch, Vec<u128>) {
        fn strings(bs: &mut [StringBuilder]) -> Vec<ArrayRef> {
            bs.iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef)
                .collect()
        }
        fn st(fields: Fields, children: Vec<ArrayRef>, valid: &mut NullBufferBuilder) -> ArrayRef {
            Arc::new(StructArray::new(fields, children, valid.finish()))
        }
        let attrs = st(
            schema::attributes_fields(),
            strings(&mut self.attrs),
            &mut self.attrs_valid,
        );
        let issuer = st(
            schema::session_issuer_fields(),
            strings(&mut self.issuer),
            &mut self.issuer_valid,
        );
        let context = st(
            schema::session_context_fields(),
            vec![attrs, issuer],
            &mut self.context_valid,
        );
        let mut id_children = strings(&mut self.identity);
        id_children.push(context);
        let identity = st(
            schema::user_identity_fields(),
            id_children,
            &mut self.identity_valid,
        );
        let mut s = strings(&mut self.strings).into_iter();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(29);
        cols.extend(s.by_ref().take(schema::STRINGS_BEFORE_TIME.len()));
        cols.push(Arc::new(self.time.finish()));
        cols.extend(s.by_ref().take(schema::STRINGS_AFTER_TIME.len()));
        cols.push(Arc::new(self.is_global.finish()));
        cols.extend(s.by_ref().take(schema::STRINGS_AFTER_GLOBAL.len()));
        cols.push(identity);
        cols.extend(s);
        let batch = RecordBatch::try_new(schema::event_schema(), cols)
            .unwrap_or_else(|e| unreachable!("builder columns match the schema: {e}"));
        (batch, self.keys)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn fill(b: &mut BatchBuilder, texts: &[String]) {
        for t in texts {
            let e = parse_event(t).unwrap();
            let c = check(&e, &NormalizeOptions::default()).unwrap();
            b.append(&e, &c, t);
        }
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let who = if i % 3 == 0 {
                    String::new()
                } else {
                    format!(
                        r#","userIdentity":{{"type":"ram-user","userName":"u{i}","sessionContext":{{"attributes":{{"mfaAuthenticated":"false"}}}}}}"#
                    )
                };
                format!(
                    r#"{{"eventId":"e-{i}","eventTime":"2026-10-01T00:00:00Z","acsRegion":"cn-hangzhou","eventName":"Describe{i}"{who}}}"#
                )
            })
            .collect()
    }

    #[test]
    fn a_builder_sized_from_what_another_held_builds_the_same_batch() {
        let rows = texts(300);
        let mut first = BatchBuilder::default();
        fill(&mut first, &rows);
        let held = first.held();
        let (want, want_keys) = first.finish();

        let mut sized = BatchBuilder::with_capacity(&held.with_headroom());
        fill(&mut sized, &rows);
        assert_eq!(sized.held(), held);
        let raw = N_STRINGS - 1;
        assert!(held.bytes[raw] >= rows.iter().map(String::len).sum::<usize>());
        let (got, got_keys) = sized.finish();
        assert_eq!(got, want);
        assert_eq!(got_keys, want_keys);

        // A capacity from a builder that saw fewer rows, or none, still builds them all.
        let mut small = BatchBuilder::with_capacity(&Capacity::default());
        fill(&mut small, &rows);
        assert_eq!(small.finish().0, want);
    }
}
