//! Coalesce a filtered scan's batches before a full sort buffers them.
//!
//! With filters pushed into the Parquet scan, DataFusion removes the `FilterExec` above it,
//! and with it the step that joined small filtered batches into full ones. A selective scan
//! then yields a few rows per row group, and each of those rows' strings is a view into the
//! whole decoded page it came from. A `SortExec` keeps every input batch until its input
//! ends, so it kept every page that a matching row touched: the console sign-in query (21.5K
//! rows of 10M) held 1.2 GB of pages and peaked at 1.9 GB, and some runs spent seconds in
//! the kernel faulting that memory in. Joining the batches first (arrow's coalesce kernel copies the viewed
//! strings out when their buffers are mostly unused) keeps only the matching rows' bytes.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
#[expect(deprecated)]
use datafusion::physical_plan::coalesce_batches::CoalesceBatchesExec;
use datafusion::physical_plan::sorts::sort::SortExec;

/// The rule that puts a coalescing step between a full sort and a filtered file scan.
#[derive(Debug, Default)]
pub struct CoalesceSortInputRule;

/// Whether `plan` is a file scan that filters rows as it reads them.
fn is_filtered_scan(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .is_some_and(|config| config.file_source().filter().is_some())
}

impl PhysicalOptimizerRule for CoalesceSortInputRule {
    #[expect(deprecated)]
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch_size: usize = config.execution.batch_size.into();
        plan.transform_up(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            // A sort with a fetch keeps its top rows, not its input batches.
            if sort.fetch().is_some() || !is_filtered_scan(sort.input()) {
                return Ok(Transformed::no(node));
            }
            let input: Arc<dyn ExecutionPlan> = Arc::new(CoalesceBatchesExec::new(
                Arc::clone(sort.input()),
                batch_size,
            ));
            Ok(Transformed::yes(
                Arc::clone(&node).with_new_children(vec![input])?,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "coalesce_sort_input"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
