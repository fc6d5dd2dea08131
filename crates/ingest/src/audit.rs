//! Data-audit logs: the records the data-security service's `DescribeAuditLogs` API returns
//! (who ran which statement against which data asset, from where, how many rows it touched,
//! which audit rule fired), recognized by content and stored in their own table,
//! `audit_logs`, partitioned by the UTC date of `LogTime`.
//!
//! A record is an audit log when it is a JSON object with a top-level `LogTime` and neither
//! `eventTime` nor `eventName` (field names match case-insensitively, as for events). Only a
//! record that is not a usable event is tested, so events pay nothing for it. Types
//! follow the API's documentation ([`trail_store::schema::AUDIT_COLUMNS`]): the two times are
//! UNIX milliseconds (a number or a string of digits) stored as UTC timestamps; `ExecuteTime`,
//! `EffectRow`, `ExecuteStatus` and `ProductId` integers; `InWhiteList` a boolean; the rest
//! text (a number or boolean where text belongs is kept as its JSON text). An object or array
//! where a documented field belongs, a time that is not milliseconds, or a missing `LogTime`
//! quarantines the record, naming the field and the value. Fields the API does not document
//! stay in `raw` with the whole record.
//!
//! Identity (dedup): the records carry no id. Two records are the same alert when every
//! documented field is equal except the ones that describe how a console shows it today
//! ([`trail_store::schema::AUDIT_PRESENTATION_COLUMNS`]: the level's name in the requested
//! language, the whitelist flag, the instance's description and audit status, the console
//! link). The key is a 128-bit hash of those values, computed from the typed columns, so the
//! same function serves new rows and rows already in the store.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use trail_store::manifest::StagedFile;
use trail_store::schema::{self, AUDIT_COLUMNS, AUDIT_PRESENTATION_COLUMNS, AuditType};
use trail_store::{FileEntry, props};

use crate::batch::date_of;
use crate::error::{IngestError, Result};
use crate::files::open_columns;

/// One typed field value of an audit log.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Time(i64),
    Int(i64),
    Bool(bool),
    Text(String),
}

/// A parsed, checked audit log (values in [`AUDIT_COLUMNS`] order).
#[derive(Debug, Clone)]
pub struct AuditLog {
    cells: Vec<Cell>,
    /// `LogTime`, microseconds since the epoch (UTC).
    pub log_time_us: i64,
    /// The UTC date of `LogTime`: the partition.
    pub date: NaiveDate,
}

/// Is this record (JSON text) a `DescribeAuditLogs` response page (`Items` at the top, no
/// event fields)? Its items are split out as records of their own.
pub fn is_response_page(text: &str) -> bool {
    if !text.contains("\"Items\"") && !text.contains("\"items\"") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(rename = "Items", alias = "items", borrow)]
        items: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Page<'_>>(text)
        .ok()
        .and_then(|p| p.items)
        .is_some_and(|i| i.get().starts_with('['))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn shown(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn typed(name: &str, t: AuditType, v: Value) -> std::result::Result<Cell, String> {
    if v.is_null() {
        return Ok(Cell::Null);
    }
    match t {
        AuditType::Time => {
            let ms = integer(&v).ok_or_else(|| {
                format!(
                    "`{name}` is {} ({}), not a UNIX time in milliseconds",
                    describe(&v),
                    shown(&v)
                )
            })?;
            let us = ms
                .checked_mul(1000)
                .filter(|us| date_of(*us).is_some())
                .ok_or_else(|| {
                    format!("`{name}` {ms} is outside the range of dates trail stores")
                })?;
            Ok(Cell::Time(us))
        }
        AuditType::Int => integer(&v).map(Cell::Int).ok_or_else(|| {
            format!(
                "`{name}` is {} ({}), not an integer",
                describe(&v),
                shown(&v)
            )
        }),
        AuditType::Bool => match &v {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            _ => Err(format!(
                "`{name}` is {} ({}), not true or false",
                describe(&v),
                shown(&v)
            )),
        },
        AuditType::Text => match v {
            Value::String(s) => Ok(Cell::Text(s)),
            Value::Number(_) | Value::Bool(_) => Ok(Cell::Text(v.to_string())),
            _ => Err(format!(
                "`{name}` is {}, where the API documents text",
                describe(&v)
            )),
        },
    }
}

/// A JSON object's fields in order (an error for anything else).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(40));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Parse a record as an audit log: `Ok(None)` when it is not one (an event, or not an
/// object), an error (for the quarantine) when it is one but a field is unusable.
pub fn parse_audit_log(text: &str) -> std::result::Result<Option<AuditLog>, String> {
    // The fields in order, without building a map: a record is read once, its text values
    // moved into the cells.
    let Ok(Entries(entries)) = serde_json::from_str::<Entries>(text) else {
        return Ok(None);
    };
    let mut cells = vec![Cell::Null; AUDIT_COLUMNS.len()];
    let mut seen = vec![false; AUDIT_COLUMNS.len()];
    let mut found = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if key.eq_ignore_ascii_case("eventTime") || key.eq_ignore_ascii_case("eventName") {
            return Ok(None);
        }
        let Some(i) = AUDIT_COLUMNS
            .iter()
            .position(|(n, _)| *n == key)
            .or_else(|| {
                AUDIT_COLUMNS
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case(&key))
            })
        else {
            continue; // kept in `raw`
        };
        let (name, _) = AUDIT_COLUMNS[i];
        if seen[i] {
            return Err(format!(
                "`{name}` appears twice (as `{key}` too); which one holds is unclear"
            ));
        }
        seen[i] = true;
        found.push((i, value));
    }
    if !seen[0] {
        return Ok(None);
    }
    for (i, value) in found {
        let (name, t) = AUDIT_COLUMNS[i];
        cells[i] = typed(name, t, value)?;
    }
    let Cell::Time(log_time_us) = cells[0] else {
        return Err(format!(
            "`{}` is null; an audit log needs the time it was logged",
            schema::AUDIT_LOG_TIME
        ));
    };
    let date = date_of(log_time_us).ok_or_else(|| {
        format!(
            "`{}` is outside the range of dates trail stores",
            schema::AUDIT_LOG_TIME
        )
    })?;
    Ok(Some(AuditLog {
        cells,
        log_time_us,
        date,
    }))
}

enum ColumnBuilder {
    Time(TimestampMicrosecondBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
}

/// Rows of audit logs being collected for one partition.
pub struct AuditBuilder {
    columns: Vec<ColumnBuilder>,
    raw: StringBuilder,
    rows: usize,
    /// Bytes of text appended (a measure of the memory held).
    pub bytes: usize,
}

impl Default for AuditBuilder {
    fn default() -> Self {
        AuditBuilder {
            columns: AUDIT_COLUMNS
                .iter()
                .map(|(_, t)| match t {
                    AuditType::Time => {
                        ColumnBuilder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                    }
                    AuditType::Int => ColumnBuilder::Int(Int64Builder::new()),
                    AuditType::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
                    AuditType::Text => ColumnBuilder::Text(StringBuilder::new()),
                })
                .collect(),
            raw: StringBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

impl AuditBuilder {
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Add one parsed log and its record text.
    pub fn append(&mut self, log: &AuditLog, raw: &str) {
        let mut bytes = raw.len() + AUDIT_COLUMNS.len() * 8;
        for (b, cell) in self.columns.iter_mut().zip(&log.cells) {
            match (b, cell) {
                (ColumnBuilder::Time(b), Cell::Time(v)) => b.append_value(*v),
                (ColumnBuilder::Int(b), Cell::Int(v)) => b.append_value(*v),
                (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
                (ColumnBuilder::Text(b), Cell::Text(v)) => {
                    bytes += v.len();
                    b.append_value(v)
                }
                (ColumnBuilder::Time(b), _) => b.append_null(),
                (ColumnBuilder::Int(b), _) => b.append_null(),
                (ColumnBuilder::Bool(b), _) => b.append_null(),
                (ColumnBuilder::Text(b), _) => b.append_null(),
            }
        }
        self.raw.append_value(raw);
        self.rows += 1;
        self.bytes += bytes;
    }

    /// The rows as a batch of [`schema::audit_log_schema`], with each row's dedup key.
    pub fn finish(mut self) -> Result<(RecordBatch, Vec<u128>)> {
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    ColumnBuilder::Time(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int(b) => Arc::new(b.finish()),
                    ColumnBuilder::Bool(b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        arrays.push(Arc::new(self.raw.finish()));
        let batch = RecordBatch::try_new(schema::audit_log_schema(), arrays)
            .map_err(|e| IngestError::arrow("assembling audit logs", e))?;
        let keys = audit_keys(&batch)?;
        Ok((batch, keys))
    }
}

/// The columns an audit log's identity is made of: every documented field but the
/// presentation ones.
fn key_columns() -> impl Iterator<Item = (&'static str, AuditType)> {
    AUDIT_COLUMNS
        .iter()
        .copied()
        .filter(|(n, _)| !AUDIT_PRESENTATION_COLUMNS.contains(n))
}

/// The dedup key of every row of a batch holding (at least) the key columns.
pub fn audit_keys(batch: &RecordBatch) -> Result<Vec<u128>> {
    use xxhash_rust::xxh3::Xxh3;
    let mut hashers: Vec<Xxh3> = (0..batch.num_rows()).map(|_| Xxh3::new()).collect();
    for (name, t) in key_columns() {
        let col = batch.column_by_name(name).ok_or_else(|| {
            IngestError::Internal(format!("audit-log batch without its `{name}` column"))
        })?;
        for (row, h) in hashers.iter_mut().enumerate() {
            if col.is_null(row) {
                h.update(&[0]);
                continue;
            }
            match t {
                AuditType::Time => {
                    h.update(&[1]);
                    h.update(
                        &col.as_primitive::<TimestampMicrosecondType>()
                            .value(row)
                            .to_le_bytes(),
                    );
                }
                AuditType::Int => {
                    h.update(&[2]);
                    h.update(&col.as_primitive::<Int64Type>().value(row).to_le_bytes());
                }
                AuditType::Bool => {
                    h.update(&[3, u8::from(col.as_boolean().value(row))]);
                }
                AuditType::Text => {
                    let v = col.as_string::<i32>().value(row);
                    h.update(&[4]);
                    h.update(&(v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
    }
    Ok(hashers.into_iter().map(|h| h.digest128()).collect())
}

/// Dedup keys of every row of the given audit-log files.
pub fn load_audit_keys(paths: &[PathBuf], into: &mut HashSet<u128>) -> Result<()> {
    let leaves: Vec<&str> = key_columns().map(|(n, _)| n).collect();
    for path in paths {
        for batch in open_columns(path, &leaves)? {
            let batch = batch.map_err(|e| IngestError::arrow(path.display().to_string(), e))?;
            into.extend(audit_keys(&batch)?);
        }
    }
    Ok(())
}

/// Write rows (already in `LogTime` order) of one date to a staged Parquet file and describe
/// it for the manifest; `None` (and no file) when there are no rows.
pub fn write_audit_file(
    staged: &Path,
    rel: String,
    date: NaiveDate,
    batches: &[RecordBatch],
) -> Result<Option<StagedFile>> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        return Ok(None);
    }
    let file = File::create(staged).map_err(|e| IngestError::io(staged, e))?;
    let mut writer = ArrowWriter::try_new(
        file,
        schema::audit_log_schema(),
        Some(props::audit_log_writer_properties(rows)),
    )
    .map_err(|e| IngestError::parquet(staged, e))?;
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for batch in batches {
        let times = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        if let (Some(lo), Some(hi)) = (arrow::compute::min(times), arrow::compute::max(times)) {
            min = min.min(lo);
            max = max.max(hi);
        }
        writer
            .write(batch)
            .map_err(|e| IngestError::parquet(staged, e))?;
    }
    let file = writer
        .into_inner()
        .map_err(|e| IngestError::parquet(staged, e))?;
    file.sync_all().map_err(|e| IngestError::io(staged, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| IngestError::io(staged, e))?
        .len();
    Ok(Some(StagedFile {
        staged: staged.to_path_buf(),
        entry: FileEntry {
            path: rel,
            region: None,
            date,
            rows: rows as u64,
            bytes,
            min_time_us: min,
            max_time_us: max,
            generation: 0,
            summary: None,
        },
        summary: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_ITEM: &str = r#"{"CreationTime": 1536751124000, "WarnLevel": "2", "ClientPort": "35756",
      "TableName": "it_table", "EffectRow": 10, "PackageName": "test01", "UserId": "19********94",
      "Message": "success", "RuleId": "9952275", "OperateType": "Drop", "LogTime": 1751870592000,
      "WarnLevelName": "高危", "InstanceName": "rm-1234", "DatabaseName": "chngc_b2b_migration_sh",
      "OssObjectKey": "oss-key1", "ExecuteStatus": 1, "ProductId": 5, "ExecuteTime": 1751870592000,
      "UserName": "admin", "InstanceDescription": "instance dscription", "RuleName": "name",
      "ColumnName": "hide14", "ClientIp": "139.*.*.57", "ClientUa": "mysql", "ProductCode": "RDS",
      "SqlText": "select * from test03\n", "InWhiteList": true, "MemberAccount": "**********8103",
      "RuleCategory": "10", "IpType": "aliyun", "ModelName": "Identity Card",
      "DataSet": "plan_id ~ application_id", "LogSource": "SLOW_SQL", "InstanceAuditStatus": "2",
      "DbType": "MySQL", "RamConsoleLink": ""}"#;

    fn cell<'a>(log: &'a AuditLog, name: &str) -> &'a Cell {
        let i = AUDIT_COLUMNS.iter().position(|(n, _)| *n == name).unwrap();
        &log.cells[i]
    }

    #[test]
    fn the_documented_item_parses_with_its_types() {
        let log = parse_audit_log(SEED_ITEM).unwrap().unwrap();
        assert_eq!(log.date.to_string(), "2025-07-07");
        assert_eq!(log.log_time_us, 1_751_870_592_000_000);
        assert_eq!(
            cell(&log, "CreationTime"),
            &Cell::Time(1_536_751_124_000_000)
        );
        assert_eq!(cell(&log, "EffectRow"), &Cell::Int(10));
        assert_eq!(cell(&log, "ProductId"), &Cell::Int(5));
        assert_eq!(cell(&log, "InWhiteList"), &Cell::Bool(true));
        assert_eq!(cell(&log, "WarnLevelName"), &Cell::Text("高危".into()));
        assert_eq!(cell(&log, "RamConsoleLink"), &Cell::Text(String::new()));
    }

    #[test]
    fn events_and_other_objects_are_not_audit_logs() {
        let event = r#"{"eventName":"x","eventTime":"2024-01-01T00:00:00Z",
            "requestParameters":{"LogTime":1}}"#;
        assert!(parse_audit_log(event).unwrap().is_none());
        assert!(parse_audit_log(r#"{"a":1}"#).unwrap().is_none());
        assert!(parse_audit_log("[1]").unwrap().is_none());
        // Names match in any case, as event fields do.
        let log = parse_audit_log(r#"{"logTime":"1751870592000","username":"u"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(cell(&log, "UserName"), &Cell::Text("u".into()));
    }

    #[test]
    fn unusable_fields_are_named_with_their_value() {
        for (text, expect) in [
            (
                r#"{"LogTime":"yesterday"}"#,
                "`LogTime` is a string (\"yesterday\")",
            ),
            (r#"{"LogTime":null}"#, "`LogTime` is null"),
            (
                r#"{"LogTime":1,"EffectRow":"many"}"#,
                "`EffectRow` is a string (\"many\"), not an integer",
            ),
            (
                r#"{"LogTime":1,"InWhiteList":2}"#,
                "`InWhiteList` is a number (2), not true or false",
            ),
            (
                r#"{"LogTime":1,"SqlText":{"a":1}}"#,
                "`SqlText` is an object",
            ),
            (r#"{"LogTime":99999999999999999}"#, "outside the range"),
            (r#"{"LogTime":1,"logtime":2}"#, "appears twice"),
        ] {
            let err = parse_audit_log(text).unwrap_err();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn the_key_ignores_presentation_and_sees_what_happened() {
        let key = |text: &str| {
            let log = parse_audit_log(text).unwrap().unwrap();
            let mut b = AuditBuilder::default();
            b.append(&log, text);
            b.finish().unwrap().1[0]
        };
        let base = key(SEED_ITEM);
        let english = SEED_ITEM.replace("高危", "High").replace("true", "false");
        assert_eq!(
            key(&english),
            base,
            "language and whitelist are presentation"
        );
        let other = SEED_ITEM.replace("\"EffectRow\": 10", "\"EffectRow\": 11");
        assert_ne!(key(&other), base);
        let other = SEED_ITEM.replace("select * from test03", "select * from test04");
        assert_ne!(key(&other), base);
        // A NULL and an empty text are different values.
        assert_ne!(
            key(r#"{"LogTime":1,"UserName":""}"#),
            key(r#"{"LogTime":1,"UserName":null}"#)
        );
    }

    #[test]
    fn response_pages_are_recognized() {
        assert!(is_response_page(
            r#"{"RequestId":"x","Items":[{"LogTime":1}]}"#
        ));
        assert!(!is_response_page(r#"{"Items":"x"}"#));
        assert!(!is_response_page(r#"{"eventName":"Items"}"#));
    }
}
