//! `trail-query`: a trail store as SQL tables through Apache DataFusion.
//!
//! [`Engine::open`] gives a DataFusion session over a store with these tables:
//!
//! * `events`: every committed management event, with the partition columns `region` (text) and
//!   `eventDate` (a `DATE`, the UTC date of `eventTime`);
//! * `insights`: insight events written by `trail insight` (present and empty before any run);
//! * `system.files`, `system.partitions`, `system.store`: what is stored, from the manifest.
//!
//! Users write field names as they know them from the event JSON, unquoted and in any case
//! (`eventName`, `EVENTNAME`, `userIdentity.userName`): [`names`] rewrites known names to their
//! stored spelling before planning. Filters on `acsRegion` and `eventTime` are turned into
//! filters on the partition columns ([`prune`]), so a query bounded to a region and a day reads
//! only that partition's files. Functions beyond DataFusion's: the JSON functions of
//! `datafusion-functions-json` and the IP functions of [`ip`].

pub mod auditlogs;
mod bucketfs;
pub use bucketfs::cached_bucket;
mod committed;
pub mod deliver;
mod filefilter;
pub mod findings;
pub mod ip;
pub mod ipintel;
mod localfs;
pub mod lookup;
pub mod names;
pub mod prune;
pub mod saved;
pub mod sortinput;
pub mod sqltext;
pub mod system;
pub mod time;
pub mod viewcount;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, ListFilesCache};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use trail_store::{Store, layout, schema};

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] trail_store::StoreError),
    #[error(transparent)]
    Intel(#[from] ipintel::IntelError),
    /// The query needed more memory than the limit allows, even with spilling.
    #[error(
        "the query needs more memory than the limit of {limit} allows ({detail}); raise it with \
         --memory-limit or TRAIL_MEMORY_LIMIT, or narrow the query (a time range, a region)"
    )]
    MemoryExhausted { limit: String, detail: String },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// What the user asked for is not valid (a saved query's parameters, a lookup attribute,
    /// a time or memory size): the message says what is accepted.
    #[error("{0}")]
    Usage(String),
    /// Something this crate relies on did not hold (a bug, not the user's doing).
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

impl From<trail_store::trails::TrailsError> for QueryError {
    fn from(e: trail_store::trails::TrailsError) -> Self {
        match e {
            trail_store::trails::TrailsError::Rule(r) => QueryError::Usage(r.to_string()),
            trail_store::trails::TrailsError::Store(s) => QueryError::Store(s),
        }
    }
}

/// A `Result` with [`QueryError`].
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Name of the events table.
pub const EVENTS_TABLE: &str = "events";
/// Name of the data-audit logs table.
pub const AUDIT_LOGS_TABLE: &str = "audit_logs";
/// Name of the insights table.
pub const INSIGHTS_TABLE: &str = "insights";
/// Directory of insight files inside a store.
pub const INSIGHTS_DIR: &str = "insights";

/// Parquet footers a session keeps decoded. DataFusion's default (50 MiB) holds fewer footers
/// than a store of 10M events has files, so every query evicted what the next one needed.
pub const METADATA_CACHE_BYTES: usize = 1 << 30;

/// How to open a store for queries.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Memory limit for query execution in bytes; operators that can spill (sorts, aggregates,
    /// joins) spill to the OS temporary directory when they reach it. `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Worker threads of the runtime the queries run on (0: one per core); the engine plans
    /// two partitions per thread.
    pub threads: usize,
    /// IP-to-ASN databases, tried in order (`ip_asn`, `ip_org`; provider-aware IpInsight).
    pub asn_db: Vec<std::path::PathBuf>,
    /// An IP-to-country database (`ip_country`).
    pub geo_db: Option<std::path::PathBuf>,
}

/// A store opened for SQL.
pub struct Engine {
    ctx: SessionContext,
    store: Store,
    options: EngineOptions,
    intel: Arc<ipintel::IpIntel>,
}

/// Parse a memory size such as `512M`, `2G`, `1.5GiB` or a plain byte count.
pub fn parse_memory_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| QueryError::Usage(format!("`{s}` is not a memory size (e.g. 512M, 2G)")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => {
            return Err(QueryError::Usage(format!(
                "`{s}` is not a memory size (use a unit K, M, G or T, e.g. 512M)"
            )));
        }
    };
    let bytes = n * mult;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(QueryError::Usage(format!("`{s}` is not a memory size")));
    }
    Ok(bytes as usize)
}

fn human_limit(bytes: usize) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// The stored schema with every string as `Utf8View`, the type DataFusion reads Parquet
/// strings as (no conversion per batch).
fn view_schema(s: &Schema) -> SchemaRef {
    fn view(dt: &DataType) -> DataType {
        match dt {
            DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
            DataType::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|f| Arc::new(f.as_ref().clone().with_data_type(view(f.data_type()))))
                    .collect::<Fields>(),
            ),
            other => other.clone(),
        }
    }
    Arc::new(Schema::new(
        s.fields()
            .iter()
            .map(|f| Field::new(f.name(), view(f.data_type()), f.is_nullable()))
            .collect::<Vec<_>>(),
    ))
}

/// The schema of the `insights` table: the columns of `events` plus `insightDetails` (JSON
/// text), so the same queries work on both.
pub fn insight_schema() -> SchemaRef {
    let events = schema::event_schema();
    let mut fields: Vec<Field> = events.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("insightDetails", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

impl Engine {
    /// Open the store at `root`.
    pub async fn open(root: &Path, options: EngineOptions) -> Result<Engine> {
        let store = Store::open(root)?;
        let intel = Arc::new(ipintel::IpIntel::open(
            &options.asn_db,
            options.geo_db.as_deref(),
        )?);
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true)
            .set_bool("datafusion.execution.parquet.bloom_filter_on_read", true)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", true)
            .set_bool("datafusion.sql_parser.collect_spans", true)
            // File statistics at planning cost a footer read of every file on every query
            // (measured 2-3x slower aggregates over 770 files); pruning does not need them,
            // since the scan reads each footer it keeps anyway.
            .set_bool("datafusion.execution.collect_statistics", false)
            // A hash join's build side, pushed into the probe side's scan as a row filter,
            // costs a hash lookup per probe row before any column is decoded. On events it
            // rarely prunes rows (an anti-join of a day against history: 3.7K of 9.7M rows)
            // and made that query 3x slower (1.14 s against 0.37 s at 10M); selective
            // semi-joins ran no faster with it.
            .set_bool(
                "datafusion.optimizer.enable_join_dynamic_filter_pushdown",
                false,
            );
        // An event file's footer is ~10 KiB; DataFusion's default 512 KiB hint reads most of a
        // small file just to find it.
        config.options_mut().execution.parquet.metadata_size_hint = Some(64 * 1024);
        // Row groups of at most 128K rows already carry min/max statistics; loading every
        // file's page index cost more (a read and a parse per file) than the pages it pruned.
        config.options_mut().execution.parquet.enable_page_index = false;
        // Two partitions per thread: smaller units of work balance better across threads on a
        // store of many small files (with reads inline, one per thread measured the same).
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // A store in a bucket: more files read at once, so that first reads (a round trip
        // each) overlap.
        let partitions = if store.bucket().is_some() {
            (2 * threads).max(16)
        } else {
            2 * threads
        };
        config = config.with_target_partitions(partitions);
        // The events table's files come from the manifest, not from listing its directories
        // (`committed`); no other listing is cached. The Parquet footers stay cached (keyed
        // by path, size and time).
        let events_url = store_dir_url(&store, layout::EVENTS_DIR)?;
        let manifest_files = Arc::new(committed::ManifestFiles::new(
            store.clone(),
            events_url.prefix().as_ref().to_owned(),
        ));
        let listing: Arc<ListFilesCache> =
            Arc::new(committed::ManifestListing(Arc::clone(&manifest_files)));
        let mut runtime = RuntimeEnvBuilder::new().with_cache_manager(
            CacheManagerConfig::default()
                .with_list_files_cache(Some(listing))
                .with_list_files_cache_limit(1)
                .with_metadata_cache_limit(METADATA_CACHE_BYTES),
        );
        if let Some(limit) = options.memory_limit {
            let pool = TrackConsumersPool::new(
                FairSpillPool::new(limit),
                NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            );
            runtime = runtime.with_memory_pool(Arc::new(pool));
        }
        let runtime = runtime.build_arc()?;
        // Read local files where they are asked for, not on tokio's blocking pool.
        runtime.register_object_store(
            ObjectStoreUrl::local_filesystem().as_ref(),
            Arc::new(localfs::InlineLocalFs::new()),
        );
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(viewcount::ViewCountRule))
            .with_physical_optimizer_rule(Arc::new(sortinput::CoalesceSortInputRule))
            .build();
        let ctx = SessionContext::new_with_state(state);
        register_functions(&ctx, &intel)?;
        register_object_stores(&store, ctx.runtime_env().as_ref())?;
        let parquet = parquet_options(&ctx);
        let object_store_url = events_url.object_store();
        let (events, file_schema) = listing_table(events_url, &schema::event_schema(), &parquet)?;
        let events =
            committed::CommittedEvents::new(events, manifest_files, file_schema, object_store_url);
        ctx.register_table(EVENTS_TABLE, Arc::new(events))?;
        let insights_dir = store.root().join(INSIGHTS_DIR);
        // In a bucket, a listing of a prefix that holds nothing is an empty table; asking
        // first would cost a request per session.
        let in_bucket = store.bucket().is_some();
        let insights: Arc<dyn datafusion::catalog::TableProvider> =
            if in_bucket || insights_dir.is_dir() {
                Arc::new(
                    listing_table(
                        store_dir_url(&store, INSIGHTS_DIR)?,
                        &insight_schema(),
                        &parquet,
                    )?
                    .0,
                )
            } else {
                let mut fields: Vec<Field> = view_schema(&insight_schema())
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                fields.push(Field::new(schema::PART_REGION, DataType::Utf8, true));
                fields.push(Field::new(schema::PART_DATE, DataType::Date32, true));
                Arc::new(MemTable::try_new(
                    Arc::new(Schema::new(fields)),
                    vec![vec![]],
                )?)
            };
        ctx.register_table(INSIGHTS_TABLE, insights)?;
        ctx.register_table(AUDIT_LOGS_TABLE, audit_logs_table(&store, &parquet)?)?;
        let findings_dir = store.root().join(findings::FINDINGS_DIR);
        let runs: Arc<dyn datafusion::catalog::TableProvider> =
            if in_bucket || findings_dir.is_dir() {
                Arc::new(flat_listing_table(
                    store_dir_url(&store, findings::FINDINGS_DIR)?,
                    &findings::schema(),
                    &parquet,
                )?)
            } else {
                Arc::new(MemTable::try_new(
                    view_schema(&findings::schema()),
                    vec![vec![]],
                )?)
            };
        ctx.register_table(findings::RUNS_TABLE, runs)?;
        ctx.sql(&findings::view_sql()).await?;
        system::register(&ctx, &store)?;
        Ok(Engine {
            ctx,
            store,
            options,
            intel,
        })
    }

    /// Where the store is, as another process names it: the bucket URL of a store in a
    /// bucket, else the store directory's absolute path.
    pub fn location(&self) -> String {
        match self.store.bucket() {
            Some(b) => b.url().to_string(),
            None => self
                .store
                .root()
                .canonicalize()
                .unwrap_or_else(|_| self.store.root().to_path_buf())
                .display()
                .to_string(),
        }
    }

    /// This engine with its session state replaced by `f`'s (e.g. one that plans on a
    /// cluster). The tables, functions and settings are those of the state `f` returns.
    pub fn with_session(
        mut self,
        f: impl FnOnce(
            datafusion::execution::SessionState,
        ) -> Result<datafusion::execution::SessionState>,
    ) -> Result<Engine> {
        self.ctx = SessionContext::new_with_state(f(self.ctx.state())?);
        Ok(self)
    }

    /// Make this store's objects readable through `runtime` (another session's), as they
    /// are through this engine's: a store in a bucket through its client, with the data
    /// folders listed from the manifest.
    pub fn register_object_stores(
        &self,
        runtime: &datafusion::execution::runtime_env::RuntimeEnv,
    ) -> Result<()> {
        register_object_stores(&self.store, runtime)
    }

    /// The DataFusion session (for callers that build plans themselves).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// The store this session reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The IP databases of this session.
    pub fn ip_intel(&self) -> &Arc<ipintel::IpIntel> {
        &self.intel
    }

    /// Notices owed to the user (each once per session), e.g. that a function needs a
    /// database that is not configured. Callers print them after a statement.
    pub fn take_notices(&self) -> Vec<String> {
        self.intel.take_notices()
    }

    /// Split SQL text into statements (parsed, so `;` inside strings is no separator).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let dialect = GenericDialect {};
        let mut parser = DFParserBuilder::new(sql).with_dialect(&dialect).build()?;
        Ok(parser.parse_statements()?.into_iter().collect())
    }

    /// Plan and start one parsed statement.
    pub async fn run_statement(&self, mut statement: Statement) -> Result<DataFrame> {
        refuse_writes(&statement)?;
        names::rewrite_statement(&mut statement);
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        let plan = prune::derive_partition_filters(plan)?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// A DataFrame built with DataFusion's API, with the same pruning SQL gets: filters on
    /// `acsRegion` and `eventTime` also become filters on the partition columns.
    pub async fn prune(&self, df: DataFrame) -> Result<DataFrame> {
        let (state, plan) = df.into_parts();
        let plan = prune::derive_partition_filters(plan)?;
        Ok(DataFrame::new(state, plan))
    }

    /// Plan one SQL statement (the last one if there are several; earlier ones run for their
    /// effect, e.g. `CREATE VIEW`).
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let mut statements = self.parse(sql)?;
        let last = statements
            .pop()
            .ok_or_else(|| QueryError::Usage("no SQL statement given".into()))?;
        for s in statements {
            self.run_statement(s).await?.collect().await?;
        }
        self.run_statement(last).await
    }

    /// Run SQL and collect every batch.
    pub async fn collect(
        &self,
        sql: &str,
    ) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
        let df = self.sql(sql).await?;
        df.collect().await.map_err(|e| self.map_error(e))
    }

    /// Turn DataFusion's out-of-memory error into one a user can act on.
    pub fn map_error(&self, e: DataFusionError) -> QueryError {
        let root = e.find_root();
        if let DataFusionError::ResourcesExhausted(detail) = root {
            return QueryError::MemoryExhausted {
                limit: self
                    .options
                    .memory_limit
                    .map(human_limit)
                    .unwrap_or_else(|| "this machine".into()),
                detail: detail.lines().next().unwrap_or_default().to_owned(),
            };
        }
        QueryError::DataFusion(e)
    }
}

/// Register trail's functions beyond DataFusion's in `ctx`: the JSON functions, the IP
/// functions and the IP-intelligence functions over `intel`'s databases.
pub fn register_functions(ctx: &SessionContext, intel: &Arc<ipintel::IpIntel>) -> Result<()> {
    let mut state_ctx = ctx.clone();
    datafusion_functions_json::register_all(&mut state_ctx)?;
    ip::register(ctx);
    ipintel::register(ctx, intel);
    Ok(())
}

/// A store in a bucket: its objects through the bucket's client, with the data folders
/// listed from the manifest. A local store needs nothing beyond the local file system.
fn register_object_stores(
    store: &Store,
    runtime: &datafusion::execution::runtime_env::RuntimeEnv,
) -> Result<()> {
    if let Some(b) = store.bucket() {
        let url = b.url();
        let base = ObjectStoreUrl::parse(format!("{}://{}", url.scheme.as_str(), url.bucket))?;
        let inner: Arc<dyn object_store::ObjectStore> = b.bucket().store.clone();
        runtime.register_object_store(
            base.as_ref(),
            Arc::new(bucketfs::ManifestListed::new(inner, store.clone())),
        );
    }
    Ok(())
}

/// The store's tables change only through trail's own commands: an INSERT, UPDATE, DELETE or
/// TRUNCATE gets an error that says so (not DataFusion's "not implemented").
fn refuse_writes(statement: &Statement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    let Statement::Statement(s) = statement else {
        return Ok(());
    };
    let verb = match s.as_ref() {
        Sql::Insert(_) => "INSERT",
        Sql::Update { .. } => "UPDATE",
        Sql::Delete(_) => "DELETE",
        Sql::Truncate { .. } => "TRUNCATE",
        _ => return Ok(()),
    };
    Err(QueryError::Usage(format!(
        "{verb} is not supported: the store's tables are read-only in SQL (events come in \
         through `trail ingest`, insights through `trail insight`); CREATE VIEW and queries work"
    )))
}

/// Names the REPL completes, from the engine itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionNames {
    /// Tables as a query names them: `events`, `system.files`, ...
    pub tables: Vec<String>,
    /// Columns and nested fields (`userIdentity.userName`) of the tables.
    pub columns: Vec<String>,
    /// Scalar, aggregate and window functions.
    pub functions: Vec<String>,
}

impl Engine {
    /// The tables, columns and functions of this session, sorted.
    pub fn completion_names(&self) -> CompletionNames {
        let mut out = CompletionNames::default();
        let state = self.ctx.state();
        let default_schema = state.config_options().catalog.default_schema.clone();
        if let Some(catalog) = self
            .ctx
            .catalog(&state.config_options().catalog.default_catalog)
        {
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for t in schema.table_names() {
                    out.tables.push(if schema_name == default_schema {
                        t
                    } else {
                        format!("{schema_name}.{t}")
                    });
                }
            }
        }
        fn walk(prefix: &str, fields: &Fields, out: &mut Vec<String>) {
            for f in fields {
                let name = if prefix.is_empty() {
                    f.name().clone()
                } else {
                    format!("{prefix}.{}", f.name())
                };
                out.push(name.clone());
                if let DataType::Struct(inner) = f.data_type() {
                    walk(&name, inner, out);
                }
            }
        }
        walk("", insight_schema().fields(), &mut out.columns);
        for s in system::schemas() {
            walk("", s.fields(), &mut out.columns);
        }
        out.columns.push(schema::PART_REGION.to_owned());
        out.columns.push(schema::PART_DATE.to_owned());
        out.functions
            .extend(state.scalar_functions().keys().cloned());
        out.functions
            .extend(state.aggregate_functions().keys().cloned());
        out.functions
            .extend(state.window_functions().keys().cloned());
        for v in [&mut out.tables, &mut out.columns, &mut out.functions] {
            v.sort();
            v.dedup();
        }
        out
    }
}

/// How the tables read Parquet: the session's Parquet settings. A table made with
/// `ParquetFormat::default()` would use DataFusion's built-in defaults instead.
fn parquet_options(ctx: &SessionContext) -> TableParquetOptions {
    ctx.state().default_table_options().parquet
}

/// A listing table of the Parquet files directly in `dir` (no partitions).
/// `audit_logs`: the committed audit-log files, partitioned by `logDate`. Files reach
/// `audit_logs/` only by the commit's rename, so a listing sees whole commits (a commit that a
/// crash interrupted shows once the next writer finishes it).
fn audit_logs_table(
    store: &Store,
    parquet: &TableParquetOptions,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let dir = store.root().join(layout::AUDIT_LOGS_DIR);
    let table_schema = schema::audit_log_schema();
    let present = match store.bucket() {
        Some(b) => !match b.cached() {
            Some(m) => m,
            None => store.manifest()?,
        }
        .audit_logs
        .is_empty(),
        None => dir.is_dir(),
    };
    if !present {
        let mut fields: Vec<Field> = view_schema(&table_schema)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(schema::AUDIT_PART_DATE, DataType::Date32, true));
        return Ok(Arc::new(MemTable::try_new(
            Arc::new(Schema::new(fields)),
            vec![vec![]],
        )?));
    }
    let url = store_dir_url(store, layout::AUDIT_LOGS_DIR)?;
    let options = ListingOptions::new(Arc::new(
        ParquetFormat::default().with_options(parquet.clone()),
    ))
    .with_file_extension(".parquet")
    .with_table_partition_cols(vec![(schema::AUDIT_PART_DATE.to_owned(), DataType::Date32)]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(view_schema(&table_schema));
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn flat_listing_table(
    url: ListingTableUrl,
    table_schema: &Schema,
    parquet: &TableParquetOptions,
) -> Result<ListingTable> {
    let options = ListingOptions::new(Arc::new(
        ParquetFormat::default().with_options(parquet.clone()),
    ))
    .with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(view_schema(table_schema));
    Ok(ListingTable::try_new(config)?)
}

/// A table of exactly these Parquet files (no partition columns), read with the session's
/// Parquet settings.
fn files_table(
    engine: &Engine,
    files: &[std::path::PathBuf],
    table_schema: SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let urls = files
        .iter()
        .map(|f| {
            // A file of a store in a bucket is named by its URL.
            let text = f.to_string_lossy();
            if text.starts_with("s3://") || text.starts_with("oss://") {
                return Ok(ListingTableUrl::parse(text)?);
            }
            let f = f
                .canonicalize()
                .map_err(|e| trail_store::StoreError::io(f, e))?;
            Ok(ListingTableUrl::parse(f.display().to_string())?)
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(
        ParquetFormat::default().with_options(parquet_options(&engine.ctx)),
    ))
    .with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(table_schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The URL of a folder of the store: a local directory, or a prefix in its bucket.
fn store_dir_url(store: &Store, dir: &str) -> Result<ListingTableUrl> {
    if let Some(b) = store.bucket() {
        return Ok(ListingTableUrl::parse(format!("{}{dir}/", b.url()))?);
    }
    let path = store.root().join(dir);
    let path = path
        .canonicalize()
        .map_err(|e| trail_store::StoreError::io(&path, e))?;
    Ok(ListingTableUrl::parse(format!("{}/", path.display()))?)
}

fn listing_table(
    url: ListingTableUrl,
    table_schema: &Schema,
    parquet: &TableParquetOptions,
) -> Result<(ListingTable, SchemaRef)> {
    let options = ListingOptions::new(Arc::new(
        ParquetFormat::default().with_options(parquet.clone()),
    ))
    .with_file_extension(".parquet")
    .with_table_partition_cols(vec![
        (schema::PART_REGION.to_owned(), DataType::Utf8),
        (schema::PART_DATE.to_owned(), DataType::Date32),
    ]);
    let file_schema = view_schema(table_schema);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::clone(&file_schema));
    Ok((ListingTable::try_new(config)?, file_schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("512M").ok(), Some(512 << 20));
        assert_eq!(parse_memory_size("2g").ok(), Some(2 << 30));
        assert_eq!(parse_memory_size("1.5GiB").ok(), Some(3 << 29));
        assert_eq!(parse_memory_size("4096").ok(), Some(4096));
        assert!(parse_memory_size("lots").is_err());
        assert!(parse_memory_size("5X").is_err());
        assert!(parse_memory_size("0").is_err());
    }

    #[tokio::test]
    async fn completion_names_come_from_the_session() {
        let dir = tempfile::tempdir().unwrap();
        Store::create(dir.path()).unwrap();
        let engine = Engine::open(dir.path(), EngineOptions::default())
            .await
            .unwrap();
        let n = engine.completion_names();
        for t in ["events", "insights", "system.files", "system.store"] {
            assert!(n.tables.contains(&t.to_owned()), "{t}: {:?}", n.tables);
        }
        assert!(!n.tables.iter().any(|t| t == "eventTime"));
        for c in [
            "userIdentity.userName",
            "userIdentity.sessionContext.attributes.mfaAuthenticated",
            "eventTime",
            "eventDate",
        ] {
            assert!(n.columns.contains(&c.to_owned()), "{c}");
        }
        for f in [
            "json_get_str",
            "ip_in_cidr",
            "count",
            "row_number",
            "date_trunc",
        ] {
            assert!(n.functions.contains(&f.to_owned()), "{f}");
        }
    }
}
