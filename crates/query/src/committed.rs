//! The `events` table: a listing of the store's Parquet files that reads each committed file
//! with the schema the store format promises.
//!
//! Every file the manifest lists was written by `trail ingest` with the event schema of the
//! store format (`trail-store/1`). Handing that schema to the Parquet reader, rather than
//! letting it decode the `ARROW:schema` footer entry of each file, lets it read the strings
//! inside `userIdentity` as `Utf8View` directly. Left to the footer's schema, they come out as
//! `Utf8` and are cast per batch, which made a `GROUP BY userIdentity.userName` over 10M events
//! spend a third of its scan time casting. A file under `events/` that the manifest does not list
//! (one copied in by hand, or committed after the manifest was read) is read as before, from its
//! own footer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::Expr;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use trail_store::summary::Summary;
use trail_store::{Store, layout};

use crate::filefilter::{self, FileFacts};

/// The manifest's committed files (by path relative to `events/`), with the manifest file's
/// identity when they were read.
struct Committed {
    stamp: (SystemTime, u64),
    paths: Arc<Files>,
}

type Files = HashMap<String, FileFacts>;

/// Loaded summaries by their path relative to the store (`None`: unreadable, admit the file).
/// Summaries never change under their names.
type Summaries = HashMap<String, Option<Arc<Summary>>>;

/// Summaries kept in memory at most (bytes); beyond it the cache starts again.
const SUMMARY_CACHE_BYTES: usize = 256 << 20;

/// A [`ListingTable`] over `events/` whose scans carry the stored schema for committed files.
pub(crate) struct CommittedEvents {
    inner: ListingTable,
    store: Store,
    /// The object-store path of `events/`, as the listing's file locations start.
    prefix: String,
    /// The schema of a committed file as the reader should produce it (no partition columns).
    file_schema: SchemaRef,
    committed: Mutex<Option<Committed>>,
    /// Where the store's objects are (for reading summaries) and the object path of its root.
    object_store_url: ObjectStoreUrl,
    root: String,
    summaries: Mutex<(Summaries, usize)>,
}

impl CommittedEvents {
    pub(crate) fn new(
        inner: ListingTable,
        store: Store,
        prefix: String,
        file_schema: SchemaRef,
        object_store_url: ObjectStoreUrl,
    ) -> Self {
        let root = prefix
            .trim_end_matches('/')
            .strip_suffix(layout::EVENTS_DIR)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        CommittedEvents {
            inner,
            store,
            prefix,
            file_schema,
            committed: Mutex::new(None),
            object_store_url,
            root,
            summaries: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Paths (relative to `events/`) of the committed files. Read again only when the manifest
    /// file changed (a commit replaces it by rename). A set that is out of date does no harm:
    /// every file any manifest listed has the stored schema, and a file missing from the set is
    /// read from its own footer. A manifest that cannot be read gives an empty set: every file
    /// is then read from its footer, as a plain listing would.
    ///
    /// For a store in a bucket this is also where a query picks its snapshot: the latest
    /// manifest version (one LIST of the versions newer than the last one read), whose files
    /// the table's listing then returns.
    fn committed(&self) -> Arc<Files> {
        let manifest = self.store.manifest_path();
        // In a bucket the version just listed is the manifest to read (no second request).
        let (stamp, latest) = match self.store.bucket().map(|b| b.latest()) {
            Some(Ok((generation, m))) => (Some((SystemTime::UNIX_EPOCH, generation)), Some(m)),
            Some(Err(_)) => (None, None),
            None => (
                std::fs::metadata(&manifest)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len()))),
                None,
            ),
        };
        let mut cache = self
            .committed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let (Some(stamp), Some(c)) = (stamp, cache.as_ref())
            && c.stamp == stamp
        {
            return Arc::clone(&c.paths);
        }
        let events = format!("{}/", layout::EVENTS_DIR);
        let read = match latest {
            Some(m) => Ok(m),
            None => self.store.manifest(),
        };
        let paths: Arc<Files> = Arc::new(match read {
            Ok(m) => m
                .files
                .into_iter()
                .filter_map(|f| {
                    let facts = FileFacts {
                        rows: f.rows,
                        min_time_us: f.min_time_us,
                        max_time_us: f.max_time_us,
                        summary: f.summary.map(|s| (s.path, s.bytes)),
                    };
                    Some((f.path.strip_prefix(&events)?.to_owned(), facts))
                })
                .collect(),
            Err(e) => {
                tracing::debug!("manifest unreadable, files read from their footers: {e}");
                HashMap::new()
            }
        });
        if let Some(stamp) = stamp {
            *cache = Some(Committed {
                stamp,
                paths: Arc::clone(&paths),
            });
        }
        paths
    }

    /// The committed facts of a file the scan lists, by its object location.
    fn facts<'a>(&self, committed: &'a Files, location: &str) -> Option<&'a FileFacts> {
        let rel = location
            .strip_prefix(self.prefix.as_str())?
            .trim_start_matches('/');
        committed.get(rel)
    }

    /// Load (once per process) the summaries of the committed files in `plan` that the time
    /// bounds in `filters` admit, a few dozen reads at a time.
    async fn load_summaries(
        &self,
        state: &dyn Session,
        plan: &Arc<dyn ExecutionPlan>,
        committed: &Files,
        filters: &[Expr],
    ) -> DfResult<()> {
        let mut wanted: Vec<(String, u64)> = Vec::new();
        {
            let cache = self.summaries.lock().unwrap_or_else(|p| p.into_inner());
            plan.apply(|node| {
                if let Some(config) = scan_config(node) {
                    for file in config.file_groups.iter().flat_map(|g| g.iter()) {
                        let Some(facts) = self.facts(committed, file.object_meta.location.as_ref())
                        else {
                            continue;
                        };
                        let Some((path, bytes)) = &facts.summary else {
                            continue;
                        };
                        if !cache.0.contains_key(path)
                            && filters.iter().all(|f| filefilter::admits(f, facts, None))
                        {
                            wanted.push((path.clone(), *bytes));
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let objects = state.runtime_env().object_store(&self.object_store_url)?;
        let loaded: Vec<(String, Option<Arc<Summary>>)> = futures::stream::iter(wanted)
            .map(|(rel, bytes)| {
                let objects = Arc::clone(&objects);
                let full = if self.root.is_empty() {
                    rel.clone()
                } else {
                    format!("{}/{rel}", self.root)
                };
                // Stored paths are already escaped (`layout`): taken as they are.
                let location = ObjectPath::parse(&full).unwrap_or_else(|_| ObjectPath::from(full));
                async move {
                    let summary = match objects.get_range(&location, 0..bytes).await {
                        Ok(b) => match Summary::parse(&b) {
                            Ok(s) => Some(Arc::new(s)),
                            Err(e) => {
                                tracing::warn!("summary {rel}: {e}; its file is read");
                                None
                            }
                        },
                        Err(e) => {
                            tracing::debug!("summary {rel} unreadable ({e}); its file is read");
                            None
                        }
                    };
                    (rel, summary)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut cache = self.summaries.lock().unwrap_or_else(|p| p.into_inner());
        for (rel, summary) in loaded {
            let size = summary.as_ref().map_or(0, |s| s.size()) + rel.len();
            if cache.1 + size > SUMMARY_CACHE_BYTES {
                *cache = (HashMap::new(), 0);
            }
            cache.1 += size;
            cache.0.insert(rel, summary);
        }
        Ok(())
    }

    /// The scan with only the files the filters may match (by the manifest's time ranges and
    /// the files' summaries), every committed file given the stored schema, the remaining files
    /// spread evenly over the partitions, and the row count from the manifest when every file
    /// is committed.
    async fn prune(
        &self,
        state: &dyn Session,
        plan: Arc<dyn ExecutionPlan>,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let committed = self.committed();
        if committed.is_empty() {
            return Ok(plan);
        }
        let use_summaries = filefilter::wants_summaries(filters);
        let use_facts = use_summaries || filefilter::bounds_time(filters);
        if use_summaries {
            self.load_summaries(state, &plan, &committed, filters)
                .await?;
        }
        let cache = self.summaries.lock().unwrap_or_else(|p| p.into_inner());
        let table_schema = self.inner.schema();
        let rewritten = plan.transform_down(|node| {
            let Some(config) = scan_config(&node) else {
                return Ok(Transformed::no(node));
            };
            let groups = config.file_groups.len().max(1);
            let mut kept = Vec::new();
            let (mut rows, mut all_committed) = (0u64, true);
            for file in config.file_groups.iter().flat_map(|g| g.iter()) {
                let mut file = file.clone();
                match self.facts(&committed, file.object_meta.location.as_ref()) {
                    Some(facts) => {
                        if use_facts {
                            let summary = facts
                                .summary
                                .as_ref()
                                .and_then(|(p, _)| cache.0.get(p).cloned().flatten());
                            if !filters
                                .iter()
                                .all(|f| filefilter::admits(f, facts, summary.as_deref()))
                            {
                                continue;
                            }
                        }
                        rows += facts.rows;
                        if file.arrow_schema.is_none() {
                            file.arrow_schema = Some(Arc::clone(&self.file_schema));
                        }
                    }
                    None => all_committed = false,
                }
                kept.push(file);
            }
            if kept.is_empty() {
                let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(node.schema()));
                return Ok(Transformed::yes(empty));
            }
            let mut builder =
                FileScanConfigBuilder::from(config.clone()).with_file_groups(balance(kept, groups));
            if all_committed {
                let mut stats = Statistics::new_unknown(&table_schema);
                stats.num_rows = Precision::Exact(rows as usize);
                builder = builder.with_statistics(stats);
            }
            let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(builder.build());
            Ok(Transformed::yes(exec))
        })?;
        Ok(rewritten.data)
    }
}

/// The file scan configuration of a scan node.
fn scan_config(node: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    node.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()
}

/// Spread files over `groups` partitions, largest first onto the lightest partition.
fn balance(mut files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
    let n = groups.min(files.len()).max(1);
    let mut out: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for file in files {
        if let Some(lightest) = out.iter_mut().min_by_key(|(size, _)| *size) {
            lightest.0 += file.object_meta.size;
            lightest.1.push(file);
        }
    }
    out.into_iter().map(|(_, f)| FileGroup::new(f)).collect()
}

impl std::fmt::Debug for CommittedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedEvents")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for CommittedEvents {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        self.prune(state, plan, filters).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DfResult<ScanResult> {
        let filters = args.filters().map(<[Expr]>::to_vec).unwrap_or_default();
        let plan = self.inner.scan_with_args(state, args).await?.into_inner();
        Ok(ScanResult::new(self.prune(state, plan, &filters).await?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}
