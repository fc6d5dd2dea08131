//! System tables: what the store holds, read from its manifest when the store is opened.
//!
//! * `system.files`: one row per committed event file (path, region, eventDate, rows, bytes,
//!   time range, the commit generation that added it);
//! * `system.partitions`: one row per region and day (files, rows, bytes, time range);
//! * `system.store`: one row (store directory, generation, files, partitions, rows, bytes,
//!   time range).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::SessionContext;
use trail_store::Store;

use crate::Result;

/// Name of the schema holding the system tables.
pub const SYSTEM_SCHEMA: &str = "system";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, true),
        Field::new("eventDate", DataType::Date32, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("minEventTime", ts(), false),
        Field::new("maxEventTime", ts(), false),
        Field::new("generation", DataType::UInt64, false),
    ]))
}

fn partitions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, true),
        Field::new("eventDate", DataType::Date32, false),
        Field::new("files", DataType::UInt64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("minEventTime", ts(), false),
        Field::new("maxEventTime", ts(), false),
    ]))
}

fn store_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("root", DataType::Utf8, false),
        Field::new("generation", DataType::UInt64, false),
        Field::new("files", DataType::UInt64, false),
        Field::new("partitions", DataType::UInt64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("minEventTime", ts(), true),
        Field::new("maxEventTime", ts(), true),
    ]))
}

/// Schemas of the system tables (for name completion and case folding).
pub fn schemas() -> Vec<SchemaRef> {
    vec![files_schema(), partitions_schema(), store_schema()]
}

fn days(date: &str) -> i32 {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| {
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1).map(|epoch| (d - epoch).num_days() as i32)
        })
        .unwrap_or(0)
}

fn col<T: datafusion::arrow::array::Array + 'static>(a: T) -> ArrayRef {
    Arc::new(a)
}

/// Register `system.files`, `system.partitions` and `system.store` with `ctx`.
pub fn register(ctx: &SessionContext, store: &Store) -> Result<()> {
    let snap = store.snapshot()?;
    let files = &snap.files;
    let f_batch = RecordBatch::try_new(
        files_schema(),
        vec![
            col(StringArray::from_iter_values(
                files.iter().map(|(f, _)| &f.path),
            )),
            col(files
                .iter()
                .map(|(f, _)| f.region.as_deref())
                .collect::<StringArray>()),
            col(Date32Array::from_iter_values(
                files.iter().map(|(f, _)| days(&f.date)),
            )),
            col(UInt64Array::from_iter_values(
                files.iter().map(|(f, _)| f.rows),
            )),
            col(UInt64Array::from_iter_values(
                files.iter().map(|(f, _)| f.bytes),
            )),
            col(TimestampMicrosecondArray::from_iter_values(
                files.iter().map(|(f, _)| f.min_time_us),
            )
            .with_timezone("UTC")),
            col(TimestampMicrosecondArray::from_iter_values(
                files.iter().map(|(f, _)| f.max_time_us),
            )
            .with_timezone("UTC")),
            col(UInt64Array::from_iter_values(
                files.iter().map(|(f, _)| f.generation),
            )),
        ],
    )?;

    #[derive(Default)]
    struct Part {
        files: u64,
        rows: u64,
        bytes: u64,
        min: i64,
        max: i64,
    }
    let mut parts: BTreeMap<(Option<String>, String), Part> = BTreeMap::new();
    for (f, _) in files {
        let p = parts
            .entry((f.region.clone(), f.date.clone()))
            .or_insert(Part {
                min: i64::MAX,
                max: i64::MIN,
                ..Default::default()
            });
        p.files += 1;
        p.rows += f.rows;
        p.bytes += f.bytes;
        p.min = p.min.min(f.min_time_us);
        p.max = p.max.max(f.max_time_us);
    }
    let p_batch = RecordBatch::try_new(
        partitions_schema(),
        vec![
            col(parts
                .keys()
                .map(|(r, _)| r.as_deref())
                .collect::<StringArray>()),
            col(Date32Array::from_iter_values(
                parts.keys().map(|(_, d)| days(d)),
            )),
            col(UInt64Array::from_iter_values(
                parts.values().map(|p| p.files),
            )),
            col(UInt64Array::from_iter_values(
                parts.values().map(|p| p.rows),
            )),
            col(UInt64Array::from_iter_values(
                parts.values().map(|p| p.bytes),
            )),
            col(
                TimestampMicrosecondArray::from_iter_values(parts.values().map(|p| p.min))
                    .with_timezone("UTC"),
            ),
            col(
                TimestampMicrosecondArray::from_iter_values(parts.values().map(|p| p.max))
                    .with_timezone("UTC"),
            ),
        ],
    )?;

    let min = files.iter().map(|(f, _)| f.min_time_us).min();
    let max = files.iter().map(|(f, _)| f.max_time_us).max();
    let s_batch = RecordBatch::try_new(
        store_schema(),
        vec![
            col(StringArray::from(vec![snap.root.display().to_string()])),
            col(UInt64Array::from(vec![snap.generation])),
            col(UInt64Array::from(vec![files.len() as u64])),
            col(UInt64Array::from(vec![parts.len() as u64])),
            col(UInt64Array::from(vec![snap.total_rows()])),
            col(UInt64Array::from(vec![snap.total_bytes()])),
            col(TimestampMicrosecondArray::from(vec![min]).with_timezone("UTC")),
            col(TimestampMicrosecondArray::from(vec![max]).with_timezone("UTC")),
        ],
    )?;

    let schema = MemorySchemaProvider::new();
    for (name, batch) in [
        ("files", f_batch),
        ("partitions", p_batch),
        ("store", s_batch),
    ] {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        schema.register_table(name.to_owned(), Arc::new(table))?;
    }
    let catalog = ctx
        .catalog(&ctx.state().config_options().catalog.default_catalog)
        .ok_or_else(|| crate::QueryError::Usage("the default catalog is missing".into()))?;
    catalog.register_schema(SYSTEM_SCHEMA, Arc::new(schema))?;
    Ok(())
}
