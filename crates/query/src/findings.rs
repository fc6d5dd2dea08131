//! The `findings` table: what `trail detect` found, latest version of each finding.
//!
//! Each detection run writes one Parquet file under `findings/` (`findings_runs`, every
//! version); `findings` keeps, for each `findingId`, the version of the latest run.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Directory of finding files inside a store.
pub const FINDINGS_DIR: &str = "findings";
/// Every stored version of every finding.
pub const RUNS_TABLE: &str = "findings_runs";
/// The latest version of each finding.
pub const TABLE: &str = "findings";

/// The schema of stored findings.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("findingId", DataType::Utf8, false),
        Field::new("ruleId", DataType::Utf8, false),
        Field::new("ruleTitle", DataType::Utf8, false),
        Field::new("ruleKind", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("tags", DataType::Utf8, true),
        Field::new("firstSeen", ts.clone(), false),
        Field::new("lastSeen", ts, false),
        Field::new("account", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("identity", DataType::Utf8, true),
        Field::new("sourceIpAddress", DataType::Utf8, true),
        Field::new("eventName", DataType::Utf8, true),
        Field::new("events", DataType::UInt64, false),
        Field::new("eventIds", DataType::Utf8, true),
        Field::new("evidence", DataType::Utf8, true),
        Field::new("run", DataType::UInt64, false),
    ]))
}

/// The view that keeps the latest run's version of each finding.
pub fn view_sql() -> String {
    let cols: Vec<String> = schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    format!(
        "CREATE VIEW {TABLE} AS SELECT {} FROM (SELECT *, row_number() OVER \
         (PARTITION BY \"findingId\" ORDER BY run DESC) AS version_rank FROM {RUNS_TABLE}) \
         WHERE version_rank = 1",
        cols.join(", ")
    )
}
