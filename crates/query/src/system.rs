//! System tables: what the store holds, read from its manifest each time a query scans them
//! (a long REPL session sees the files that ingest and compaction commit meanwhile).
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
use datafusion::arrow::error::Result as ArrowResult;
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use trail_store::{Snapshot, Store};

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

#[derive(Default)]
struct Part {
    files: u64,
    rows: u64,
    bytes: u64,
    min: i64,
    max: i64,
}

fn days(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::default()).num_days() as i32
}

fn col<T: datafusion::arrow::array::Array + 'static>(a: T) -> ArrayRef {
    Arc::new(a)
}

/// The three system tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Files,
    Partitions,
    Store,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Files, Kind::Partitions, Kind::Store];

    fn name(self) -> &'static str {
        match self {
            Kind::Files => "files",
            Kind::Partitions => "partitions",
            Kind::Store => "store",
        }
    }

    fn schema(self) -> SchemaRef {
        match self {
            Kind::Files => files_schema(),
            Kind::Partitions => partitions_schema(),
            Kind::Store => store_schema(),
        }
    }
}

/// A system table: its rows come from the manifest committed when a query scans it.
#[derive(Debug)]
struct SystemTable {
    kind: Kind,
    store: Store,
}

#[async_trait::async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.kind.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let snap = self
            .store
            .snapshot()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = match self.kind {
            Kind::Files => files_batch(&snap)?,
            Kind::Partitions => partitions_batch(&snap)?,
            Kind::Store => store_batch(&snap)?,
        };
        MemTable::try_new(self.kind.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

fn files_batch(snap: &Snapshot) -> ArrowResult<RecordBatch> {
    let files = &snap.files;
    RecordBatch::try_new(
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
                files.iter().map(|(f, _)| days(f.date)),
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
    )
}

/// Per (region, day): files, rows, bytes, time range.
fn partitions(snap: &Snapshot) -> BTreeMap<(Option<String>, chrono::NaiveDate), Part> {
    let mut parts: BTreeMap<(Option<String>, chrono::NaiveDate), Part> = BTreeMap::new();
    for (f, _) in &snap.files {
        let p = parts.entry((f.region.clone(), f.date)).or_insert(Part {
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
    parts
}

fn partitions_batch(snap: &Snapshot) -> ArrowResult<RecordBatch> {
    let parts = partitions(snap);
    RecordBatch::try_new(
        partitions_schema(),
        vec![
            col(parts
                .keys()
                .map(|(r, _)| r.as_deref())
                .collect::<StringArray>()),
            col(Date32Array::from_iter_values(
                parts.keys().map(|(_, d)| days(*d)),
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
    )
}

fn store_batch(snap: &Snapshot) -> ArrowResult<RecordBatch> {
    let range = snap.time_range();
    let (min, max) = (range.map(|r| r.0), range.map(|r| r.1));
    RecordBatch::try_new(
        store_schema(),
        vec![
            col(StringArray::from(vec![snap.root.display().to_string()])),
            col(UInt64Array::from(vec![snap.generation])),
            col(UInt64Array::from(vec![snap.files.len() as u64])),
            col(UInt64Array::from(vec![partitions(snap).len() as u64])),
            col(UInt64Array::from(vec![snap.total_rows()])),
            col(UInt64Array::from(vec![snap.total_bytes()])),
            col(TimestampMicrosecondArray::from(vec![min]).with_timezone("UTC")),
            col(TimestampMicrosecondArray::from(vec![max]).with_timezone("UTC")),
        ],
    )
}

/// Register `system.files`, `system.partitions` and `system.store` with `ctx`.
pub fn register(ctx: &SessionContext, store: &Store) -> Result<()> {
    let schema = MemorySchemaProvider::new();
    for kind in Kind::ALL {
        let table = SystemTable {
            kind,
            store: store.clone(),
        };
        schema.register_table(kind.name().to_owned(), Arc::new(table))?;
    }
    let catalog = ctx
        .catalog(&ctx.state().config_options().catalog.default_catalog)
        .ok_or_else(|| crate::QueryError::Internal("the default catalog is missing".into()))?;
    catalog.register_schema(SYSTEM_SCHEMA, Arc::new(schema))?;
    Ok(())
}
