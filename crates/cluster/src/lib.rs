//! `trail-cluster`: trail's SQL on an Apache DataFusion Ballista cluster.
//!
//! * [`connect`] turns a local [`Engine`] into one whose queries a Ballista scheduler plans
//!   and its executors run: the same tables, functions and names, over the same store (a
//!   bucket, or a path every machine sees).
//! * [`run_scheduler`] and [`run_executor`] run Ballista's scheduler and executor with trail's
//!   codecs ([`codec`]), functions and plan rules, so a deployment needs only `trail`.

pub mod codec;
pub mod watch;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service};
use ballista_scheduler::scheduler_server::SessionBuilder;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use object_store::ObjectStore;
use trail_query::ipintel::IpIntel;
use trail_query::sortinput::CoalesceSortInputRule;
use trail_query::viewcount::ViewCountRule;
use trail_query::{Engine, EngineOptions, QueryError};
use trail_store::remote::{Bucket, BucketUrl, ConnectOptions};
use url::Url;

pub use codec::{TrailLogicalCodec, TrailPhysicalCodec, VERSION};

/// The scheduler port a cluster URL without one means (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Errors of the cluster layer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster address is not one.
    #[error(
        "`{0}` is not a cluster address: write df://HOST:PORT (or HOST:PORT), e.g. \
         df://scheduler.internal:50050"
    )]
    Address(String),
    /// Nothing answers at the scheduler's address.
    #[error(
        "cannot reach the cluster's scheduler at {address} ({reason}): check that `trail \
         cluster scheduler` runs there and that this machine may connect to that port"
    )]
    Unreachable { address: String, reason: String },
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// The scheduler or executor stopped with an error.
    #[error("{0}")]
    Ballista(String),
}

/// A `Result` with [`ClusterError`].
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// The scheduler's host and port in a cluster address (`df://HOST:PORT`, `HOST:PORT` or
/// `HOST`).
pub fn parse_address(address: &str) -> Result<(String, u16)> {
    let bad = || ClusterError::Address(address.to_owned());
    let text = address.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("df://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| bad())?;
    if url.scheme() != "df" || !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(bad());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        url.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
    ))
}

/// `engine` with its queries planned by the scheduler at `address` and run by its executors.
/// Fails at once, naming the address, when nothing answers there.
pub async fn connect(engine: Engine, address: &str) -> Result<Engine> {
    let (host, port) = parse_address(address)?;
    let display = format!("{host}:{port}");
    let unreachable = |reason: String| ClusterError::Unreachable {
        address: display.clone(),
        reason,
    };
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("the name does not resolve: {e}")))?
        .collect();
    let mut last = String::from("no address");
    let mut reached = false;
    for a in addrs {
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(a)).await
        {
            Ok(Ok(_)) => {
                reached = true;
                break;
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "no answer within 5 s".into(),
        }
    }
    if !reached {
        return Err(unreachable(last));
    }
    let tables = store_tables(engine.context()).await?;
    let location = engine.location();
    let url = format!("df://{display}");
    let state = engine.context().state();
    let mut config = state.config().clone();
    // The session's tables are in its catalog already: a new default catalog would hide them.
    config
        .options_mut()
        .catalog
        .create_default_catalog_and_schema = false;
    let config = config
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(TrailLogicalCodec::client(
            location, tables,
        )))
        .with_ballista_physical_extension_codec(Arc::new(TrailPhysicalCodec::default()))
        .set_bool(ADAPTIVE_PLANNER, false);
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let remote = SessionContext::remote_with_state(&url, state).await?;
    // Ballista's client state carries DataFusion's functions only: trail's go back in.
    trail_query::register_functions(&remote, engine.ip_intel())?;
    Ok(engine.with_session(|_| Ok(remote.state()))?)
}

/// Every table of the session by the name queries use (`events`, `system.files`).
async fn store_tables(ctx: &SessionContext) -> Result<codec::StoreTables> {
    let state = ctx.state();
    let options = state.config_options();
    let default_schema = options.catalog.default_schema.clone();
    let mut out = Vec::new();
    let Some(catalog) = ctx.catalog(&options.catalog.default_catalog) else {
        return Ok(out);
    };
    for schema_name in catalog.schema_names() {
        let Some(schema) = catalog.schema(&schema_name) else {
            continue;
        };
        for t in schema.table_names() {
            if let Some(provider) = schema.table(&t).await? {
                let name = if schema_name == default_schema {
                    t
                } else {
                    format!("{schema_name}.{t}")
                };
                out.push((name, provider));
            }
        }
    }
    Ok(out)
}

/// Object stores by URL, with buckets (`s3://`, `oss://`) opened on first use with the
/// credentials and endpoint of the environment (as `trail` opens a store in a bucket).
#[derive(Debug, Default)]
pub struct BucketRegistry {
    inner: DefaultObjectStoreRegistry,
    /// Keep copies of the store's data files in the local file cache (executors).
    cache_files: bool,
}

impl BucketRegistry {
    /// An executor's registry: buckets' data files are read once into the local file cache
    /// (`TRAIL_CACHE_DIR`, `TRAIL_CACHE_MB`), as `trail` caches them on a client.
    pub fn caching() -> Self {
        BucketRegistry {
            cache_files: true,
            ..BucketRegistry::default()
        }
    }
}

impl ObjectStoreRegistry for BucketRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(s) = self.inner.get_store(url) {
            return Ok(s);
        }
        let base = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default());
        let Some(parsed) = BucketUrl::parse(&base) else {
            return self.inner.get_store(url);
        };
        let bucket = parsed
            .and_then(|b| Bucket::open(b, &ConnectOptions::from_env()))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut store: Arc<dyn ObjectStore> = bucket.store.clone();
        if self.cache_files {
            store = trail_query::cached_bucket(store, &base);
        }
        self.inner.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

/// How a scheduler or executor runs trail's queries.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// IP-to-ASN databases for `ip_asn()`/`ip_org()` (the client's are not shipped).
    pub asn_db: Vec<PathBuf>,
    /// An IP-to-country database for `ip_country()`.
    pub geo_db: Option<PathBuf>,
}

impl NodeOptions {
    fn engine(&self) -> EngineOptions {
        EngineOptions {
            asn_db: self.asn_db.clone(),
            geo_db: self.geo_db.clone(),
            ..EngineOptions::default()
        }
    }
}

/// Ballista's adaptive planner, off: in Ballista 55 it returned the rows of an `ORDER BY`
/// over a join out of order (a hash shuffle placed between the sort and the final merge; the
/// `unusual_user_agents` analysis showed it). The classic planner orders them right.
const ADAPTIVE_PLANNER: &str = "ballista.planner.adaptive.enabled";

/// A session state with trail's functions and plan rules over `config`.
fn trail_state(
    config: SessionConfig,
    intel: &Arc<IpIntel>,
    registry: &Arc<BucketRegistry>,
) -> datafusion::error::Result<datafusion::execution::SessionState> {
    let base =
        ballista_core::utils::default_session_builder(config.set_bool(ADAPTIVE_PLANNER, false))?;
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::clone(registry) as Arc<dyn ObjectStoreRegistry>)
        .build_arc()?;
    let state = SessionStateBuilder::new_from_existing(base)
        .with_runtime_env(runtime)
        .with_physical_optimizer_rule(Arc::new(ViewCountRule))
        .with_physical_optimizer_rule(Arc::new(CoalesceSortInputRule))
        .build();
    let ctx = SessionContext::new_with_state(state);
    trail_query::register_functions(&ctx, intel)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(ctx.state())
}

fn open_intel(options: &NodeOptions) -> Result<Arc<IpIntel>> {
    Ok(Arc::new(
        IpIntel::open(&options.asn_db, options.geo_db.as_deref()).map_err(QueryError::from)?,
    ))
}

/// Where a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The address to listen on.
    pub bind: SocketAddr,
    /// The host name executors and clients reach this scheduler by.
    pub external_host: Option<String>,
    pub node: NodeOptions,
}

/// Run a Ballista scheduler with trail's codecs and session until it stops.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    let intel = open_intel(&options.node)?;
    let registry = Arc::new(BucketRegistry::default());
    let builder: SessionBuilder = {
        let intel = Arc::clone(&intel);
        let registry = Arc::clone(&registry);
        Arc::new(move |config| trail_state(config, &intel, &registry))
    };
    let mut config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options
            .external_host
            .clone()
            .unwrap_or_else(|| options.bind.ip().to_string()),
        override_logical_codec: Some(Arc::new(TrailLogicalCodec::server(options.node.engine()))),
        override_physical_codec: Some(Arc::new(TrailPhysicalCodec::default())),
        override_session_builder: Some(builder),
        ..SchedulerConfig::default()
    };
    // An executor that stops answering is given up on after this long, and its tasks run
    // elsewhere.
    config.executor_timeout_seconds = 30;
    config.expire_dead_executor_interval_seconds = 5;
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| ClusterError::Ballista(e.to_string()))?;
    let ballista = |e: ballista_core::error::BallistaError| ClusterError::Ballista(e.to_string());
    config.validate().map_err(ballista)?;
    let slots = cluster.cluster_state();
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(ballista)?;
    tokio::spawn(watch::watch_jobs(scheduler.clone(), slots));
    tracing::info!(
        "trail {VERSION} cluster scheduler listening on {}",
        options.bind
    );
    start_grpc_service(options.bind, scheduler)
        .await
        .map_err(ballista)
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler: `HOST:PORT` or `df://HOST:PORT`.
    pub scheduler: String,
    /// The interface to listen on.
    pub bind_host: String,
    /// The host name the scheduler and other executors reach this one by.
    pub external_host: Option<String>,
    /// The Arrow Flight port (results and shuffle data).
    pub flight_port: u16,
    /// The gRPC port.
    pub grpc_port: u16,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Where shuffle files go (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Memory for query execution in bytes (default: Ballista's share of the machine).
    pub memory_limit: Option<u64>,
    pub node: NodeOptions,
}

/// Run a Ballista executor with trail's codecs and functions until it stops.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let (scheduler_host, scheduler_port) = parse_address(&options.scheduler)?;
    let intel = open_intel(&options.node)?;
    let registry = Arc::new(BucketRegistry::caching());
    let functions = trail_state(SessionConfig::new_with_ballista(), &intel, &registry)?;
    let work_dir = options.work_dir.as_ref().map(|d| d.display().to_string());
    // Each task gets its own runtime; the Parquet footers read by one serve the next.
    let footers: Arc<FileMetadataCache> = Arc::new(
        DefaultCache::new(trail_query::METADATA_CACHE_BYTES).with_name("TrailExecutorFooters"),
    );
    let runtime: RuntimeProducer = {
        let registry = Arc::clone(&registry);
        let temp = work_dir.clone();
        Arc::new(move |_config: &SessionConfig| {
            let mut b = RuntimeEnvBuilder::new()
                .with_object_store_registry(Arc::clone(&registry) as Arc<dyn ObjectStoreRegistry>)
                .with_cache_manager(
                    CacheManagerConfig::default()
                        .with_metadata_cache_limit(trail_query::METADATA_CACHE_BYTES)
                        .with_file_metadata_cache(Some(Arc::clone(&footers))),
                );
            if let Some(t) = &temp {
                b = b.with_temp_file_path(t.clone());
            }
            b.build_arc()
        })
    };
    let config_producer: ConfigProducer = Arc::new(SessionConfig::new_with_ballista);
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host,
        scheduler_port,
        // Keep trying while the scheduler starts (as services come up in any order).
        scheduler_connect_timeout_seconds: 60,
        vcores: options.concurrent_tasks,
        work_dir,
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&functions))),
        override_runtime_producer: Some(runtime),
        override_config_producer: Some(config_producer),
        override_logical_codec: Some(Arc::new(TrailLogicalCodec::server(options.node.engine()))),
        override_physical_codec: Some(Arc::new(TrailPhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    config.executor_heartbeat_interval_seconds = 5;
    if let Some(m) = options.memory_limit {
        config.memory_pool_size = Some(m);
    }
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| ClusterError::Ballista(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let ok = |s: &str| parse_address(s).ok();
        assert_eq!(ok("df://sched:50051"), Some(("sched".into(), 50051)));
        assert_eq!(ok("sched:7000"), Some(("sched".into(), 7000)));
        assert_eq!(
            ok("10.0.0.5"),
            Some(("10.0.0.5".into(), DEFAULT_SCHEDULER_PORT))
        );
        assert_eq!(ok("df://[::1]:9"), Some(("::1".into(), 9)));
        for bad in [
            "",
            "http://x:1",
            "df://x:1/path",
            "df://",
            "df://x:notaport",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}
