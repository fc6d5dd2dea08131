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
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;
use trail_store::{Store, layout};

/// The manifest's committed paths, with the manifest file's identity when they were read.
struct Committed {
    stamp: (SystemTime, u64),
    paths: Arc<HashSet<String>>,
}

/// A [`ListingTable`] over `events/` whose scans carry the stored schema for committed files.
pub(crate) struct CommittedEvents {
    inner: ListingTable,
    store: Store,
    /// The object-store path of `events/`, as the listing's file locations start.
    prefix: String,
    /// The schema of a committed file as the reader should produce it (no partition columns).
    file_schema: SchemaRef,
    committed: Mutex<Option<Committed>>,
}

impl CommittedEvents {
    pub(crate) fn new(
        inner: ListingTable,
        store: Store,
        prefix: String,
        file_schema: SchemaRef,
    ) -> Self {
        CommittedEvents {
            inner,
            store,
            prefix,
            file_schema,
            committed: Mutex::new(None),
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
    fn committed(&self) -> Arc<HashSet<String>> {
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
        let paths: Arc<HashSet<String>> = Arc::new(match read {
            Ok(m) => m
                .files
                .into_iter()
                .filter_map(|f| f.path.strip_prefix(&events).map(str::to_owned))
                .collect(),
            Err(e) => {
                tracing::debug!("manifest unreadable, files read from their footers: {e}");
                HashSet::new()
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

    /// Give every committed file in the scan the stored schema.
    fn with_file_schemas(&self, plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let committed = self.committed();
        if committed.is_empty() {
            return Ok(plan);
        }
        let rewritten = plan.transform_down(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let mut config = config.clone();
            let mut changed = false;
            for group in &mut config.file_groups {
                for i in 0..group.len() {
                    let file = &mut group[i];
                    let known = file
                        .object_meta
                        .location
                        .as_ref()
                        .strip_prefix(self.prefix.as_str())
                        .map(|rel| rel.trim_start_matches('/'))
                        .is_some_and(|rel| committed.contains(rel));
                    if known && file.arrow_schema.is_none() {
                        file.arrow_schema = Some(Arc::clone(&self.file_schema));
                        changed = true;
                    }
                }
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
            Ok(Transformed::yes(exec))
        })?;
        Ok(rewritten.data)
    }
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
        self.with_file_schemas(plan)
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DfResult<ScanResult> {
        let plan = self.inner.scan_with_args(state, args).await?.into_inner();
        Ok(ScanResult::new(self.with_file_schemas(plan)?))
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
