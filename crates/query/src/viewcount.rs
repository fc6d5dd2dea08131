//! Partial `count(*)` grouped by one string column, counted by view before by value.
//!
//! `SELECT eventName, count(*) FROM events GROUP BY eventName` spends most of its time in the
//! partial aggregation: DataFusion hashes every row's string and compares it with the group's
//! (half the CPU at 10M events). The strings come from dictionary-encoded Parquet pages, and the
//! reader gives every row of a dictionary entry the same 16-byte view (same buffer, same offset).
//! This operator counts rows per distinct view of a batch first (a hash of one `u128`), then
//! adds each distinct view's count to its string's group: the string is hashed once per
//! distinct value per batch instead of once per row.
//!
//! It replaces a partial `AggregateExec` only when the aggregate is exactly one plain string
//! view column grouped, no grouping sets, and every aggregate a `count` of a non-null literal
//! (`count(*)`, `count(1)`), and it produces the same partial rows (group value, count state),
//! so the final aggregation above it is unchanged. Two views of one string from different
//! buffers are two batch entries that land in the same group, so results never change. The
//! groups are written out and cleared when they grow past [`FLUSH_GROUPS`] or
//! [`FLUSH_BYTES`] (a partial aggregate may emit a group more than once; the final one adds
//! them), so a high-cardinality column holds no more than that.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringViewBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::physical_plan::InputOrderMode;
use datafusion::physical_plan::Partitioning;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// Groups held before they are written out.
pub const FLUSH_GROUPS: usize = 64 * 1024;
/// Bytes of group values held before they are written out.
pub const FLUSH_BYTES: usize = 16 << 20;

/// The rule that puts [`ViewCountExec`] in place of a matching partial aggregation.
#[derive(Debug, Default)]
pub struct ViewCountRule;

impl PhysicalOptimizerRule for ViewCountRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match ViewCountExec::try_replace(&node) {
            Some(exec) => Ok(Transformed::yes(exec)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "view_count"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Partial `count` aggregates grouped by one `Utf8View` column.
#[derive(Debug)]
pub struct ViewCountExec {
    input: Arc<dyn ExecutionPlan>,
    /// The grouped column's index in the input.
    column: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

fn is_non_null_literal(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Literal>()
        .is_some_and(|l| !l.value().is_null())
}

impl ViewCountExec {
    /// The operator rebuilt from its parts: the input, the grouped column's index in it and
    /// the partial rows' schema (a plan decoded on a cluster's executor). Refused unless the
    /// parts are what [`ViewCountRule`] would have produced.
    pub fn from_parts(
        input: Arc<dyn ExecutionPlan>,
        column: usize,
        schema: SchemaRef,
    ) -> Result<Self> {
        let grouped = input.schema();
        let fits = grouped
            .fields()
            .get(column)
            .is_some_and(|f| f.data_type() == &DataType::Utf8View)
            && schema.fields().len() >= 2
            && schema.field(0).data_type() == &DataType::Utf8View
            && schema
                .fields()
                .iter()
                .skip(1)
                .all(|f| f.data_type() == &DataType::Int64);
        if !fits {
            return Err(DataFusionError::Internal(format!(
                "view count over column {column} of {grouped:?} into {schema:?}"
            )));
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(ViewCountExec {
            input,
            column,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The operator's input.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The grouped column's index in the input.
    pub fn column(&self) -> usize {
        self.column
    }

    /// This operator in place of `node`, when `node` is a partial aggregation it computes.
    fn try_replace(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
        let agg = node.downcast_ref::<AggregateExec>()?;
        // Groups come out in hash order: an aggregation that streams sorted input keeps that
        // order (and says so in its properties), so it stays as it is.
        if *agg.mode() != AggregateMode::Partial
            || *agg.input_order_mode() != InputOrderMode::Linear
            || agg.limit_options().is_some()
            || !agg.dynamic_expressions_produced().is_empty()
            || agg.filter_expr().iter().any(Option::is_some)
        {
            return None;
        }
        let group = agg.group_expr();
        if !group.is_single() || group.expr().len() != 1 {
            return None;
        }
        let column = group.expr()[0].0.downcast_ref::<Column>()?.index();
        let input = agg.input();
        if input.schema().field(column).data_type() != &DataType::Utf8View {
            return None;
        }
        let plain_counts = agg.aggr_expr().iter().all(|a| {
            a.fun().name() == "count"
                && !a.is_distinct()
                && a.order_bys().is_empty()
                && a.expressions().iter().all(is_non_null_literal)
        });
        if agg.aggr_expr().is_empty() || !plain_counts {
            return None;
        }
        let schema = agg.schema();
        // The partial rows: the group value, then one Int64 count state per aggregate.
        if schema.fields().len() != 1 + agg.aggr_expr().len()
            || schema.field(0).data_type() != &DataType::Utf8View
            || schema
                .fields()
                .iter()
                .skip(1)
                .any(|f| f.data_type() != &DataType::Int64)
        {
            return None;
        }
        Some(Arc::new(ViewCountExec {
            input: Arc::clone(input),
            column,
            schema,
            properties: Arc::clone(agg.properties()),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

impl DisplayAs for ViewCountExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ViewCountExec: gby=[{}], counts={}",
            self.schema.field(0).name(),
            self.schema.fields().len() - 1
        )
    }
}

impl ExecutionPlan for ViewCountExec {
    fn name(&self) -> &str {
        "ViewCountExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("ViewCountExec takes one input, got {}", c.len()))
        })?;
        Ok(Arc::new(ViewCountExec {
            input,
            column: self.column,
            schema: Arc::clone(&self.schema),
            properties: Arc::clone(&self.properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let state = Counter {
            column: self.column,
            schema: Arc::clone(&self.schema),
            groups: HashMap::default(),
            bytes: 0,
            nulls: 0,
            batch_views: HashMap::default(),
        };
        let stream = futures::stream::unfold(
            (input, state, baseline, false),
            |(mut input, mut state, baseline, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let next = input.next().await;
                    let timer = baseline.elapsed_compute().timer();
                    let out = match next {
                        Some(Ok(batch)) => {
                            if let Err(e) = state.add(&batch) {
                                Some((Err(e), true))
                            } else if state.groups.len() >= FLUSH_GROUPS
                                || state.bytes >= FLUSH_BYTES
                            {
                                Some((state.emit(), false))
                            } else {
                                None
                            }
                        }
                        Some(Err(e)) => Some((Err(e), true)),
                        None => Some((state.emit(), true)),
                    };
                    timer.done();
                    if let Some((out, done)) = out {
                        if let Ok(batch) = &out {
                            baseline.record_output(batch.num_rows());
                        }
                        if done {
                            baseline.done();
                        }
                        return Some((out, (input, state, baseline, done)));
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// One partition's groups.
struct Counter {
    column: usize,
    /// The partial rows: the group value, then one count state per `count` of the query.
    schema: SchemaRef,
    groups: HashMap<Box<[u8]>, i64, foldhash::fast::RandomState>,
    /// Bytes of the group values held.
    bytes: usize,
    nulls: i64,
    /// Per batch: view -> rows with it (reused between batches).
    batch_views: HashMap<u128, (usize, i64), foldhash::fast::RandomState>,
}

impl Counter {
    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let values = batch
            .column(self.column)
            .as_string_view_opt()
            .ok_or_else(|| DataFusionError::Internal("ViewCountExec: not a string view".into()))?;
        self.batch_views.clear();
        let views = values.views();
        if values.null_count() == 0 {
            for (row, &view) in views.iter().enumerate() {
                self.batch_views.entry(view).or_insert((row, 0)).1 += 1;
            }
        } else {
            for (row, &view) in views.iter().enumerate() {
                if values.is_null(row) {
                    self.nulls += 1;
                } else {
                    self.batch_views.entry(view).or_insert((row, 0)).1 += 1;
                }
            }
        }
        for &(row, n) in self.batch_views.values() {
            let value: &[u8] = values.value(row).as_bytes();
            match self.groups.get_mut(value) {
                Some(count) => *count += n,
                None => {
                    self.bytes += value.len();
                    self.groups.insert(value.into(), n);
                }
            }
        }
        Ok(())
    }

    /// Write out the groups held (and clear them).
    fn emit(&mut self) -> Result<RecordBatch> {
        let groups = std::mem::take(&mut self.groups);
        let nulls = std::mem::take(&mut self.nulls);
        self.bytes = 0;
        let rows = groups.len() + usize::from(nulls > 0);
        let mut keys = StringViewBuilder::with_capacity(rows);
        let mut counts = Vec::with_capacity(rows);
        for (value, n) in groups {
            let text = std::str::from_utf8(&value)
                .map_err(|e| DataFusionError::Internal(format!("ViewCountExec: {e}")))?;
            keys.append_value(text);
            counts.push(n);
        }
        if nulls > 0 {
            keys.append_null();
            counts.push(nulls);
        }
        let counts: ArrayRef = Arc::new(Int64Array::from(counts));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(keys.finish())];
        columns.extend(std::iter::repeat_n(counts, self.schema.fields().len() - 1));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}
