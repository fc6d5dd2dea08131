//! The `events` table: the store's committed Parquet files, read with the schema the store
//! format promises, and listed from the manifest.
//!
//! Every file the manifest lists was written by `trail ingest` with the event schema of the
//! store format (`trail-store/1`). Handing that schema to the Parquet reader, rather than
//! letting it decode the `ARROW:schema` footer entry of each file, lets it read the strings
//! inside `userIdentity` as `Utf8View` directly. Left to the footer's schema, they come out as
//! `Utf8` and are cast per batch, which made a `GROUP BY userIdentity.userName` over 10M events
//! spend a third of its scan time casting.
//!
//! In a local store the files to scan come from the manifest too, through DataFusion's
//! list-files cache ([`ManifestListing`]): a fresh process neither walks the partition
//! directories nor stats each file, and a query sees one committed snapshot, never a commit's
//! files half moved in or a compaction's inputs beside its output. (A store in a bucket has its
//! listings answered from the manifest by its object store, `bucketfs`.) A file under `events/`
//! that no manifest lists (copied in by hand, or left by an interrupted commit) is not part of
//! the table. Only when the manifest cannot be read, or holds a commit still being applied, are
//! the partition directories listed as a plain listing table would, and files the manifest does
//! not know are then read from their own footers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Constraints, Statistics, TableReference};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::execution::cache::cache_manager::CachedFileList;
use datafusion::execution::cache::{Cache, CacheEntryInfo, TableScopedPath};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::Expr;
use futures::StreamExt;
use object_store::ObjectMeta;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use trail_store::summary::Summary;
use trail_store::{Store, layout};

use crate::filefilter::{self, FileFacts};

/// The committed files of the manifest last read, with the manifest file's identity when it was
/// read.
struct Committed {
    stamp: (SystemTime, u64),
    snapshot: Snapshot,
}

/// Committed files by path relative to `events/`.
type Files = HashMap<String, FileFacts>;

/// What one manifest says about `events/`.
#[derive(Clone)]
struct Snapshot {
    files: Arc<Files>,
    /// The files as a listing of `events/` would return them; `None` in a bucket, and when the
    /// manifest could not be read or holds a commit still being applied (the directories are
    /// listed then).
    listing: Option<Arc<Vec<ObjectMeta>>>,
}

/// The manifest's view of `events/`, shared by the table (facts for pruning) and the session's
/// list-files cache (the files to scan).
pub(crate) struct ManifestFiles {
    store: Store,
    /// The object-store path of `events/`, as a listing's file locations start.
    prefix: String,
    committed: Mutex<Option<Committed>>,
}

impl ManifestFiles {
    pub(crate) fn new(store: Store, prefix: String) -> Self {
        ManifestFiles {
            store,
            prefix: prefix.trim_end_matches('/').to_owned(),
            committed: Mutex::new(None),
        }
    }

    /// The committed files. Read again only when the manifest file changed (a commit replaces
    /// it by rename). A manifest that cannot be read gives no files and no listing: every file
    /// is then listed and read from its footer, as a plain listing table would.
    ///
    /// For a store in a bucket this is also where a query picks its snapshot: the latest
    /// manifest version (one LIST of the versions newer than the last one read).
    fn snapshot(&self) -> Snapshot {
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
            return c.snapshot.clone();
        }
        let events = format!("{}/", layout::EVENTS_DIR);
        let read = match latest {
            Some(m) => Ok(m),
            None => self.store.manifest(),
        };
        let snapshot = match read {
            Ok(m) => {
                let listed = self.store.bucket().is_none()
                    && m.pending.renames.is_empty()
                    && m.pending.deletes.is_empty();
                let mut listing = Vec::with_capacity(if listed { m.files.len() } else { 0 });
                let mut files = HashMap::with_capacity(m.files.len());
                for f in m.files {
                    let Some(rel) = f.path.strip_prefix(&events) else {
                        continue;
                    };
                    if listed {
                        listing.push(self.object_meta(rel, f.bytes, f.generation));
                    }
                    let facts = FileFacts {
                        rows: f.rows,
                        min_time_us: f.min_time_us,
                        max_time_us: f.max_time_us,
                        summary: f.summary.map(|s| (s.path, s.bytes)),
                    };
                    files.insert(rel.to_owned(), facts);
                }
                Snapshot {
                    files: Arc::new(files),
                    listing: listed.then(|| Arc::new(listing)),
                }
            }
            Err(e) => {
                tracing::debug!("manifest unreadable, files listed and read from footers: {e}");
                Snapshot {
                    files: Arc::new(HashMap::new()),
                    listing: None,
                }
            }
        };
        if let Some(stamp) = stamp {
            *cache = Some(Committed {
                stamp,
                snapshot: snapshot.clone(),
            });
        }
        snapshot
    }

    /// A committed file as a listing of `events/` would describe it. Files never change under
    /// their names, so the commit's generation stands in for the modification time (the
    /// footer cache keys on path, size and time).
    fn object_meta(&self, rel: &str, bytes: u64, generation: u64) -> ObjectMeta {
        let full = format!("{}/{rel}", self.prefix);
        // Stored paths are already escaped (`layout`): taken as they are.
        let location = ObjectPath::parse(&full).unwrap_or_else(|_| ObjectPath::from(full));
        ObjectMeta {
            location,
            last_modified: chrono::DateTime::from_timestamp(
                i64::try_from(generation).unwrap_or(i64::MAX),
                0,
            )
            .unwrap_or_default(),
            size: bytes,
            e_tag: None,
            version: None,
        }
    }

    /// The committed facts of a file the scan lists, by its object location.
    fn facts<'a>(&self, committed: &'a Files, location: &str) -> Option<&'a FileFacts> {
        let rel = location
            .strip_prefix(self.prefix.as_str())?
            .trim_start_matches('/');
        committed.get(rel)
    }
}

/// DataFusion's list-files cache for a session on a store: the listing of `events/` is the
/// manifest's file list (see the module notes). Every other listing goes to the object store,
/// and nothing is kept, since a session (the REPL) stays open while `trail ingest` adds files
/// and compaction replaces them: a listing cached at the first query would miss the new events
/// and name files that are gone.
pub(crate) struct ManifestListing(pub(crate) Arc<ManifestFiles>);

impl ManifestListing {
    /// The key is the local store's `events/` listing (in a bucket, reading the manifest here
    /// would cost a LIST request for a listing the object store answers anyway).
    fn is_events(&self, key: &TableScopedPath) -> bool {
        self.0.store.bucket().is_none() && key.table.is_none() && key.path.as_ref() == self.0.prefix
    }
}

impl Cache<TableScopedPath, CachedFileList> for ManifestListing {
    fn get(&self, key: &TableScopedPath) -> Option<CachedFileList> {
        if !self.is_events(key) {
            return None;
        }
        let files = self.0.snapshot().listing?;
        Some(CachedFileList { files })
    }

    fn put(&self, _key: &TableScopedPath, _value: CachedFileList) -> Option<CachedFileList> {
        None
    }

    fn remove(&self, _key: &TableScopedPath) -> Option<CachedFileList> {
        None
    }

    fn contains_key(&self, _key: &TableScopedPath) -> bool {
        false
    }

    fn len(&self) -> usize {
        0
    }

    fn clear(&self) {}

    fn name(&self) -> String {
        "trail manifest listing".to_owned()
    }

    fn cache_limit(&self) -> usize {
        // Holds nothing; DataFusion only consults a list-files cache whose limit is not zero.
        1
    }

    fn update_cache_limit(&self, _limit: usize) {}

    fn cache_ttl(&self) -> Option<Duration> {
        None
    }

    fn update_cache_ttl(&self, _ttl: Option<Duration>) {}

    fn drop_table_entries(&self, _table_ref: &TableReference) -> DfResult<()> {
        Ok(())
    }

    fn list_entries(
        &self,
    ) -> datafusion::common::HashMap<TableScopedPath, CacheEntryInfo<CachedFileList>> {
        datafusion::common::HashMap::default()
    }
}

/// Loaded summaries by their path relative to the store (`None`: unreadable, admit the file).
/// Summaries never change under their names.
type Summaries = HashMap<String, Option<Arc<Summary>>>;

/// Summaries kept in memory at most (bytes); beyond it the cache starts again.
const SUMMARY_CACHE_BYTES: usize = 256 << 20;

/// A [`ListingTable`] over `events/` whose scans carry the stored schema for committed files and
/// only the files the filters may match.
pub(crate) struct CommittedEvents {
    inner: ListingTable,
    files: Arc<ManifestFiles>,
    /// The schema of a committed file as the reader should produce it (no partition columns).
    file_schema: SchemaRef,
    /// Where the store's objects are (for reading summaries) and the object path of its root.
    object_store_url: ObjectStoreUrl,
    root: String,
    summaries: Mutex<(Summaries, usize)>,
}

impl CommittedEvents {
    pub(crate) fn new(
        inner: ListingTable,
        files: Arc<ManifestFiles>,
        file_schema: SchemaRef,
        object_store_url: ObjectStoreUrl,
    ) -> Self {
        let root = files
            .prefix
            .strip_suffix(layout::EVENTS_DIR)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        CommittedEvents {
            inner,
            files,
            file_schema,
            object_store_url,
            root,
            summaries: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn facts<'a>(&self, committed: &'a Files, location: &str) -> Option<&'a FileFacts> {
        self.files.facts(committed, location)
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
        let committed = self.files.snapshot().files;
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
            .field("prefix", &self.files.prefix)
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
