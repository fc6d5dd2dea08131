//! Insight records into the store (`insights/region=…/eventDate=…/*.parquet`) and out as NDJSON
//! in the vendor's delivery layout.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::json::ReaderBuilder;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use trail_query::{Engine, EngineOptions, INSIGHTS_DIR};
use trail_store::Store;
use trail_store::layout::{PartitionKey, encode_region};

use crate::{Insight, InsightError, Result, strings};

/// What [`write_insights`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Insights written now.
    pub new: usize,
    /// Insights found again that the store already held (same `sharedEventId`).
    pub existing: usize,
    pub files: usize,
}

/// `sharedEventId`s already in the store's insights table.
async fn stored_ids(engine: &Engine) -> Result<HashSet<String>> {
    let batches = engine
        .collect("SELECT DISTINCT sharedEventId AS id FROM insights")
        .await?;
    let mut out = HashSet::new();
    for b in &batches {
        out.extend(strings(b, "id")?.into_iter().flatten());
    }
    Ok(out)
}

fn row_for_table(record: &Value) -> Value {
    let mut row = record.clone();
    if let Some(obj) = row.as_object_mut() {
        let details = obj
            .remove("insightDetails")
            .map(|d| d.to_string())
            .unwrap_or_default();
        obj.insert("insightDetails".into(), Value::String(details));
        obj.insert("dialect".into(), Value::String("actiontrail".into()));
        obj.insert("raw".into(), Value::String(record.to_string()));
    }
    row
}

fn record_time(record: &Value) -> DateTime<Utc> {
    record["eventTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Write the insights the store does not hold yet. Each (region, date) partition gets one new
/// Parquet file named after its content, written atomically (a reader never sees part of it).
/// `engine` is open on the same store (its `insights` table is read to skip stored findings).
pub async fn write_insights(
    engine: &Engine,
    store: &Store,
    insights: &[Insight],
) -> Result<Written> {
    let have = stored_ids(engine).await?;
    let mut written = Written::default();
    let mut parts: BTreeMap<PartitionKey, Vec<Value>> = BTreeMap::new();
    for insight in insights {
        if have.contains(&insight.shared_event_id()) {
            written.existing += 1;
            continue;
        }
        written.new += 1;
        for r in insight.records() {
            let key = PartitionKey::new(insight.region.as_deref(), record_time(&r).date_naive());
            parts.entry(key).or_default().push(r);
        }
    }
    let schema = trail_query::insight_schema();
    for (key, mut records) in parts {
        records.sort_by(|a, b| {
            record_time(a)
                .cmp(&record_time(b))
                .then_with(|| a["eventId"].as_str().cmp(&b["eventId"].as_str()))
        });
        let rows: Vec<Value> = records.iter().map(row_for_table).collect();
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.len().max(1))
            .build_decoder()?;
        decoder.serialize(&rows)?;
        let Some(batch) = decoder.flush()? else {
            continue;
        };
        let mut bytes = Vec::new();
        {
            let props = trail_store::props::writer_properties(batch.num_rows());
            let mut w = ArrowWriter::try_new(&mut bytes, Arc::clone(&schema), Some(props))?;
            w.write(&batch)?;
            w.close()?;
        }
        let ids: Vec<&str> = records
            .iter()
            .filter_map(|r| r["eventId"].as_str())
            .collect();
        let name = format!(
            "insights-{:016x}.parquet",
            xxhash_rust::xxh3::xxh3_64(ids.join(",").as_bytes())
        );
        let rel = key
            .dir()
            .strip_prefix(trail_store::layout::EVENTS_DIR)
            .map(|r| format!("{INSIGHTS_DIR}{r}"))
            .unwrap_or_else(|| format!("{INSIGHTS_DIR}/unknown"));
        store.write_aux(&format!("{rel}/{name}"), &bytes)?;
        written.files += 1;
    }
    Ok(written)
}

/// Export every stored insight as NDJSON under `out` in ActionTrail's delivery layout,
/// `Actiontrail-Insight/<region>/<YYYY>/<MM>/<DD>/insights.json`, records in time order.
/// The region is percent-encoded as in the store, so event content never picks a path.
/// Returns (records, files).
pub async fn export_ndjson(
    root: &Path,
    out: &Path,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<(u64, u64)> {
    let engine = Engine::open(root, EngineOptions::default()).await?;
    let mut filters = Vec::new();
    if let Some(s) = since {
        filters.push(format!("eventDate >= {}", crate::sql_date(s)));
    }
    if let Some(u) = until {
        filters.push(format!("eventDate <= {}", crate::sql_date(u)));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let batches = engine
        .collect(&format!(
            "SELECT acsRegion AS r, eventDate AS d, raw FROM insights {filter} \
             ORDER BY eventTime, eventId"
        ))
        .await?;
    let mut files: BTreeMap<(Option<String>, i32), String> = BTreeMap::new();
    let mut n = 0u64;
    for b in &batches {
        let regions = strings(b, "r")?;
        let days = crate::dates(b, "d")?;
        let raws = strings(b, "raw")?;
        for ((r, d), raw) in regions.into_iter().zip(days).zip(raws) {
            let text = files.entry((r, d)).or_default();
            text.push_str(raw.as_deref().unwrap_or("{}"));
            text.push('\n');
            n += 1;
        }
    }
    let count = files.len() as u64;
    for ((region, day), text) in files {
        let date = crate::day_date(day);
        let dir = out.join(format!(
            "Actiontrail-Insight/{}/{:04}/{:02}/{:02}",
            encode_region(region.as_deref()),
            date.year(),
            date.month(),
            date.day()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| InsightError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let path = dir.join("insights.json");
        std::fs::write(&path, text).map_err(|e| InsightError::Io { path, source: e })?;
    }
    Ok((n, count))
}
