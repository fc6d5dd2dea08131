//! How trail's plans cross the wire to a Ballista scheduler and its executors.
//!
//! Ballista ships the client's *logical* plan to the scheduler, which plans it physically and
//! sends each stage's *physical* plan to the executors. DataFusion's own serialization
//! (`datafusion-proto`) covers the listing tables, Parquet scans, expressions and functions by
//! name; these codecs add what is trail's own:
//!
//! * [`TrailLogicalCodec`]: the store's tables (`events` with its manifest-driven pruning,
//!   `insights`, `audit_logs`, the `system.*` tables, the empty tables of a fresh store) travel
//!   as *where the store is and which table*, and the scheduler opens the same table on the same
//!   store (a bucket, or a path every machine sees). A table made in the client's session (a
//!   `CREATE TABLE ... AS`) is refused with a clear error: its rows live in the client.
//! * [`TrailPhysicalCodec`]: the view-count aggregation ([`ViewCountExec`]).
//!
//! Every trail encoding starts with [`MAGIC`] and carries the trail version that wrote it: a
//! scheduler refuses a plan from a client of another version, naming both versions.
//! Everything else goes to Ballista's codecs unchanged.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use ballista_core::execution_plans::ShuffleReaderExec;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};
use trail_query::viewcount::ViewCountExec;
use trail_query::{Engine, EngineOptions};

/// The first bytes of every encoding these codecs write themselves.
pub const MAGIC: &[u8] = b"\xfftrail\x00";

/// The trail version of this build, carried in every plan it encodes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize, Deserialize)]
struct TableMessage {
    trail: String,
    store: String,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct ViewCountMessage {
    trail: String,
    column: usize,
    /// The partial rows' fields: the group (a string view), then one count state each.
    fields: Vec<(String, bool)>,
}

fn encode<T: Serialize>(message: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(&mut *buf, message)
        .map_err(|e| DataFusionError::Internal(format!("encoding a trail plan node: {e}")))
}

/// The message in `buf` if trail wrote it (`None`: it is Ballista's or DataFusion's).
fn decode<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Option<Result<T>> {
    let body = buf.strip_prefix(MAGIC)?;
    Some(serde_json::from_slice(body).map_err(|e| {
        DataFusionError::Plan(format!(
            "a trail plan node could not be read ({e}): are the client, the scheduler and the \
             executors the same trail version?"
        ))
    }))
}

fn check_version(theirs: &str) -> Result<()> {
    if theirs == VERSION {
        return Ok(());
    }
    Err(DataFusionError::Plan(format!(
        "version mismatch: the query comes from trail {theirs}, this cluster runs trail \
         {VERSION}; run the same trail version on the client, the scheduler and every executor"
    )))
}

/// Engines opened to decode tables, one per store (a scheduler serves many queries on the
/// same store; each engine reads the store's manifest again when it changes).
fn engines() -> &'static Mutex<HashMap<String, Arc<Engine>>> {
    static ENGINES: OnceLock<Mutex<HashMap<String, Arc<Engine>>>> = OnceLock::new();
    ENGINES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Run `fut` to completion from synchronous code that runs on a multi-threaded tokio runtime
/// (the codecs' decode calls).
fn wait<F: std::future::Future>(fut: F) -> Result<F::Output> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| DataFusionError::Internal(format!("no runtime to open the store on: {e}")))?;
    Ok(tokio::task::block_in_place(|| handle.block_on(fut)))
}

/// The store's tables of a session, by the name queries use (`events`, `system.files`).
pub type StoreTables = Vec<(String, Arc<dyn TableProvider>)>;

/// The logical codec of trail's clients and schedulers.
#[derive(Debug)]
pub struct TrailLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
    /// On a client: where its store is, and the tables registered for it.
    client: Option<(String, StoreTables)>,
    /// On a scheduler: how to open the stores that plans name.
    server: EngineOptions,
}

impl TrailLogicalCodec {
    /// A client's codec: `tables` are the store's tables of the client's session, by name.
    pub fn client(location: String, tables: StoreTables) -> Self {
        TrailLogicalCodec {
            inner: BallistaLogicalExtensionCodec::default(),
            client: Some((location, tables)),
            server: EngineOptions::default(),
        }
    }

    /// A scheduler's codec: the stores that plans name are opened with `options` (its IP
    /// databases, its memory limit).
    pub fn server(options: EngineOptions) -> Self {
        TrailLogicalCodec {
            inner: BallistaLogicalExtensionCodec::default(),
            client: None,
            server: options,
        }
    }

    fn open(&self, location: &str) -> Result<Arc<Engine>> {
        if let Some(e) = engines()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(location)
        {
            return Ok(Arc::clone(e));
        }
        let options = self.server.clone();
        let engine = wait(Engine::open(Path::new(location), options))?.map_err(|e| {
            DataFusionError::Plan(format!(
                "the cluster cannot open the store {location}: {e} (every scheduler and executor \
                 must reach the store: a bucket, or a path they all see)"
            ))
        })?;
        let engine = Arc::new(engine);
        engines()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(location.to_owned(), Arc::clone(&engine));
        Ok(engine)
    }
}

impl LogicalExtensionCodec for TrailLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(message) = decode::<TableMessage>(buf) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let message = message?;
        check_version(&message.trail)?;
        let engine = self.open(&message.store)?;
        engine
            .register_object_stores(ctx.runtime_env().as_ref())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = TableReference::from(message.table.as_str());
        let provider = wait(engine.context().table_provider(table))??;
        if provider.schema().fields() != schema.fields() {
            return Err(DataFusionError::Plan(format!(
                "table {} of {} has another schema on the cluster than on the client; are they \
                 the same trail version?",
                message.table, message.store
            )));
        }
        Ok(provider)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let store_table = self.client.as_ref().and_then(|(location, tables)| {
            tables
                .iter()
                .find(|(_, t)| Arc::ptr_eq(t, &node))
                .map(|(name, _)| (location, name))
        });
        match store_table {
            Some((location, name)) => encode(
                &TableMessage {
                    trail: VERSION.to_owned(),
                    store: location.clone(),
                    table: name.clone(),
                },
                buf,
            ),
            None => self
                .inner
                .try_encode_table_provider(table_ref, node, buf)
                .map_err(|_| {
                    DataFusionError::NotImplemented(format!(
                        "table {table_ref} cannot be read on the cluster: only the store's own \
                         tables can (a table made in this session holds its rows here); run \
                         this query without --cluster, or write it over the store's tables"
                    ))
                }),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// Refuse a stage that would read one upstream task's output twice.
///
/// When an executor is lost, Ballista 55 runs again the stages whose results it held, and a
/// stage that had already read some of them can be handed both the first and the second
/// attempt's output of the same upstream task: its counts and sums would come out too high.
/// Each partition of a shuffle reads at most one output of each upstream task, so a repeated
/// (stage, upstream task, partition) is that case: the task fails with this error and the
/// query fails clearly, never with a wrong answer.
fn check_shuffle_inputs(plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() else {
        return Ok(());
    };
    for locations in &reader.partition {
        let mut seen = HashSet::with_capacity(locations.len());
        for l in locations {
            let key = (
                l.partition_id.stage_id,
                l.map_partition_id,
                l.partition_id.partition_id,
            );
            if !seen.insert(key) {
                return Err(DataFusionError::Execution(format!(
                    "stage {} would read the output of task {} of stage {} twice: an executor \
                     was lost and the cluster ran that stage again; run the query again",
                    reader.stage_id, l.map_partition_id, l.partition_id.stage_id
                )));
            }
        }
    }
    Ok(())
}

/// The physical codec of trail's schedulers and executors.
#[derive(Debug, Default)]
pub struct TrailPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for TrailPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(message) = decode::<ViewCountMessage>(buf) else {
            let plan = self.inner.try_decode(buf, inputs, ctx, proto_converter)?;
            check_shuffle_inputs(&plan)?;
            return Ok(plan);
        };
        let message = message?;
        check_version(&message.trail)?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "a view count has one input, not {}",
                inputs.len()
            )));
        };
        let fields: Vec<Field> = message
            .fields
            .iter()
            .enumerate()
            .map(|(i, (name, nullable))| {
                let dt = if i == 0 {
                    DataType::Utf8View
                } else {
                    DataType::Int64
                };
                Field::new(name, dt, *nullable)
            })
            .collect();
        let exec = ViewCountExec::from_parts(
            Arc::clone(input),
            message.column,
            Arc::new(Schema::new(fields)),
        )?;
        Ok(Arc::new(exec))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(exec) = node.downcast_ref::<ViewCountExec>() else {
            return self.inner.try_encode(node, buf, proto_converter);
        };
        encode(
            &ViewCountMessage {
                trail: VERSION.to_owned(),
                column: exec.column(),
                fields: exec
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.is_nullable()))
                    .collect(),
            },
            buf,
        )
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_versions_are_refused_by_name() {
        let err = check_version("0.0.1-other").unwrap_err().to_string();
        assert!(
            err.contains("0.0.1-other") && err.contains(VERSION),
            "{err}"
        );
        assert!(check_version(VERSION).is_ok());
    }

    #[test]
    fn foreign_bytes_are_left_to_ballista_and_damaged_ones_are_errors() {
        assert!(decode::<TableMessage>(b"\x0a\x03abc").is_none());
        let mut buf = Vec::new();
        encode(
            &TableMessage {
                trail: VERSION.into(),
                store: "/s".into(),
                table: "events".into(),
            },
            &mut buf,
        )
        .unwrap();
        let back = decode::<TableMessage>(&buf).unwrap().unwrap();
        assert_eq!((back.store.as_str(), back.table.as_str()), ("/s", "events"));
        for cut in MAGIC.len()..buf.len() {
            assert!(decode::<TableMessage>(&buf[..cut]).unwrap().is_err());
        }
    }

    #[test]
    fn a_shuffle_reading_one_task_output_twice_is_refused() {
        use ballista_core::serde::scheduler::{
            ExecutorMetadata, ExecutorOperatingSystemSpecification, ExecutorSpecification,
            PartitionId, PartitionLocation, PartitionStats,
        };
        use datafusion::physical_plan::Partitioning;
        let location = |map: usize, partition: usize| PartitionLocation {
            map_partition_id: map,
            partition_id: PartitionId {
                job_id: "job".into(),
                stage_id: 1,
                partition_id: partition,
            },
            executor_meta: ExecutorMetadata {
                id: "e".into(),
                host: "127.0.0.1".into(),
                port: 1,
                grpc_port: 2,
                specification: ExecutorSpecification { vcores: 1 },
                os_info: ExecutorOperatingSystemSpecification::default(),
            },
            partition_stats: PartitionStats::default(),
            file_id: None,
            is_sort_shuffle: false,
        };
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let reader = |partition: Vec<Vec<PartitionLocation>>| -> Arc<dyn ExecutionPlan> {
            Arc::new(
                ShuffleReaderExec::try_new(
                    2,
                    partition,
                    Arc::clone(&schema),
                    Partitioning::UnknownPartitioning(2),
                )
                .unwrap(),
            )
        };
        // Every upstream task's output of each partition once: read.
        let ok = reader(vec![
            vec![location(0, 0), location(1, 0)],
            vec![location(0, 1), location(1, 1)],
        ]);
        assert!(check_shuffle_inputs(&ok).is_ok());
        // Task 1's output of partition 0 from two attempts: refused, naming the stage.
        let twice = reader(vec![
            vec![location(0, 0), location(1, 0), location(1, 0)],
            vec![location(0, 1), location(1, 1)],
        ]);
        let err = check_shuffle_inputs(&twice).unwrap_err().to_string();
        assert!(err.contains("task 1 of stage 1 twice"), "{err}");
        assert!(err.contains("run the query again"), "{err}");
    }
}
