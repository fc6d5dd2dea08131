//! `trail`: an embedded analytical query engine for cloud audit events.
//!
//! The binary parses arguments ([`args`]), calls the library crates and prints. Exit codes:
//! 0 success, 1 error, 2 usage error, 3 the command succeeded but quarantined bad records.

mod args;
mod display;
mod exec;
mod render;
mod repl;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command, InsightCommand, SigmaCommand};
use display::{human_bytes, visible};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code when records were quarantined.
const EXIT_QUARANTINED: u8 = 3;
/// Exit code of a usage error (as clap's own).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    check_leading_options(&cli, &matches);
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(&cli))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// The log filter: `TRAIL_LOG`, else: a cluster's scheduler and executors log warnings (a lost
/// executor, a task that failed); every other command logs its own errors only, as the error
/// it ends with says what Ballista's would.
fn log_filter(cli: &Cli) -> tracing_subscriber::EnvFilter {
    match std::env::var("TRAIL_LOG") {
        Ok(v) if !v.trim().is_empty() => tracing_subscriber::EnvFilter::new(v),
        _ if matches!(cli.command, Some(Command::Cluster(_))) => {
            tracing_subscriber::EnvFilter::new("warn")
        }
        _ => tracing_subscriber::EnvFilter::new(
            "error,ballista=off,ballista_core=off,ballista_scheduler=off,ballista_executor=off",
        ),
    }
}

/// What to do about an error only a cluster gives.
fn cluster_hint(msg: &str) -> Option<&'static str> {
    trail_cluster::watch::retryable(msg).then_some(
        "the cluster lost this query's work (the scheduler's and executors' logs say why; \
         after an executor was lost, run the query again)",
    )
}

/// Print an error and choose its exit code. A closed pipe (`trail sql ... | head`) is success.
fn report(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    if let Some(f) = e.downcast_ref::<exec::Failure>() {
        eprintln!("{}", display::visible_table(&f.0));
        return ExitCode::FAILURE;
    }
    // Each cause once: library errors do not repeat their source in their message, and a
    // cause whose text the message already holds is not printed again.
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    if let Some(hint) = cluster_hint(&msg) {
        msg.push_str(": ");
        msg.push_str(hint);
    }
    eprintln!("error: {}", visible(&msg));
    if is_usage(e) {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Whether an error is the user's invocation being wrong (a saved query or parameter that
/// does not exist, a whitelist line that is not a CIDR): exit code 2.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<trail_query::QueryError>(),
            Some(trail_query::QueryError::Usage(_))
        ) || matches!(
            c.downcast_ref::<trail_insight::InsightError>(),
            Some(trail_insight::InsightError::Usage(_))
        ) || matches!(
            c.downcast_ref::<trail_detect::DetectError>(),
            Some(trail_detect::DetectError::Usage(_))
        )
    })
}

/// Options written before the command apply to it where it takes them, and are ignored where
/// it does not (`alias trail='trail --store ~/audit'` keeps `trail gen` working). One that the
/// command has with another meaning (`trail --threads 4 ingest`, where `--threads` counts
/// decoder threads) is a usage error, not something silently ignored.
fn check_leading_options(cli: &Cli, matches: &clap::ArgMatches) {
    let Some(command) = &cli.command else {
        return;
    };
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let takes = [
        ("store", "store", command.store_arg().is_some()),
        (
            "memory_limit",
            "memory-limit",
            command.query_args().is_some(),
        ),
        ("query_threads", "threads", command.query_args().is_some()),
        ("asn_db", "asn-db", command.query_args().is_some()),
        ("geo_db", "geo-db", command.query_args().is_some()),
        ("cluster", "cluster", command.query_args().is_some()),
        ("queries_dir", "queries", command.queries_arg().is_some()),
    ];
    let mut leaf = Cli::command();
    for name in command.name().split(' ') {
        match leaf.find_subcommand(name) {
            Some(sub) => leaf = sub.clone(),
            None => return,
        }
    }
    for (id, long, takes_it) in takes {
        if given(id) && !takes_it && leaf.get_arguments().any(|a| a.get_long() == Some(long)) {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--{long} before `{}` means something else there; write it after the command",
                        command.name()
                    ),
                )
                .exit();
        }
    }
}

/// What a command runs against, after options on the command and before it are merged (the
/// command's own win, then those before it, then the environment, then defaults).
struct Setup {
    store: PathBuf,
    engine: trail_query::EngineOptions,
    queries_dir: Option<PathBuf>,
    /// The cluster that runs the queries (`None`: this process).
    cluster: Option<String>,
}

impl Setup {
    fn new(cli: &Cli) -> Setup {
        let cmd = cli.command.as_ref();
        let store = cmd
            .and_then(|c| c.store_arg())
            .and_then(|s| s.store.clone())
            .or_else(|| cli.store.clone())
            .unwrap_or_else(|| PathBuf::from(args::DEFAULT_STORE));
        let q = cmd.and_then(|c| c.query_args());
        let memory_limit = q.and_then(|q| q.memory_limit).or(cli.engine.memory_limit);
        let threads = q
            .and_then(|q| q.query_threads)
            .or(cli.engine.query_threads)
            .map_or(0, usize::from);
        let asn_db = q
            .map(|q| q.asn_db.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| cli.engine.asn_db.clone());
        let geo_db = q
            .and_then(|q| q.geo_db.clone())
            .or_else(|| cli.engine.geo_db.clone());
        let cluster = q
            .and_then(|q| q.cluster.clone())
            .or_else(|| cli.engine.cluster.clone());
        let queries_dir = cmd
            .and_then(|c| c.queries_arg())
            .and_then(|q| q.queries_dir.clone())
            .or_else(|| cli.library.queries_dir.clone());
        Setup {
            store,
            engine: trail_query::EngineOptions {
                memory_limit,
                threads,
                asn_db,
                geo_db,
            },
            queries_dir,
            cluster,
        }
    }

    /// A runtime with the query worker threads asked for.
    fn runtime(&self) -> Result<tokio::runtime::Runtime> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if self.engine.threads > 0 {
            b.worker_threads(self.engine.threads);
        }
        Ok(b.enable_all().build()?)
    }

    async fn engine(&self) -> Result<trail_query::Engine> {
        let engine = trail_query::Engine::open(&self.store, self.engine.clone()).await?;
        match &self.cluster {
            Some(address) => Ok(trail_cluster::connect(engine, address).await?),
            None => Ok(engine),
        }
    }

    fn library(&self) -> Result<trail_query::saved::Library> {
        Ok(trail_query::saved::Library::load(
            self.queries_dir.as_deref(),
        )?)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let setup = Setup::new(&cli);
    let Some(command) = cli.command else {
        return repl(&setup, render::Format::Table);
    };
    let local_only = match &command {
        Command::Trails(_) => Some("`trail trails`"),
        Command::Deliver(_) => Some("`trail deliver`"),
        _ => None,
    };
    if let Some(what) = local_only
        && is_bucket(&setup.store)
    {
        anyhow::bail!(
            "{}: {what} works on a store on local disk only for now; run it on a local copy \
             (`aws s3 sync {} DIR`), or query the bucket store with `trail sql` and `trail run`",
            setup.store.display(),
            setup.store.display()
        );
    }
    match command {
        Command::Ingest(a) => {
            let code = ingest(&setup.store, a)?;
            deliver_started_trails(&setup)?;
            Ok(code)
        }
        Command::Compact(a) => compact(&setup.store, a),
        Command::Info(a) => info(&setup.store, a.json),
        Command::Vacuum(a) => vacuum(&setup.store, a),
        Command::Sql(a) => sql(&setup, a),
        Command::Repl(a) => repl(&setup, a.format),
        Command::Queries(a) => queries(&setup, a),
        Command::Run(a) => run_saved(&setup, a),
        Command::Lookup(a) => lookup(&setup, a),
        Command::AuditLogs(a) => audit_logs(&setup, *a),
        Command::Insight(c) => {
            let writes = match &c {
                InsightCommand::Ip(a) => !a.run.dry_run,
                InsightCommand::Rate(a) => !a.run.dry_run,
                InsightCommand::Export(_) => false,
            };
            let code = insight(&setup, c)?;
            if writes {
                deliver_started_trails(&setup)?;
            }
            Ok(code)
        }
        Command::Trails(c) => trails(&setup, c),
        Command::Deliver(a) => deliver(&setup, a),
        Command::Sigma(SigmaCommand::Check(a)) => sigma_check(a),
        Command::Sigma(SigmaCommand::Run(a)) => sigma_run(&setup, a),
        Command::Detect(a) => detect(&setup, a),
        Command::Gen(a) => gen_events(a),
        Command::Cluster(c) => cluster(c),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "trail", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => man(&out),
    }
}

/// Run a cluster node until it is stopped.
fn cluster(c: args::ClusterCommand) -> Result<ExitCode> {
    let node = |n: args::NodeArgs| trail_cluster::NodeOptions {
        asn_db: n.asn_db,
        geo_db: n.geo_db,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match c {
        args::ClusterCommand::Scheduler(a) => {
            eprintln!(
                "trail {} cluster scheduler listening on {}",
                trail_cluster::VERSION,
                a.bind
            );
            runtime.block_on(trail_cluster::run_scheduler(
                trail_cluster::SchedulerOptions {
                    bind: a.bind,
                    external_host: a.external_host,
                    node: node(a.node),
                },
            ))?;
        }
        args::ClusterCommand::Executor(a) => {
            eprintln!(
                "trail {} cluster executor serving {} (flight port {}, grpc port {})",
                trail_cluster::VERSION,
                a.scheduler,
                a.flight_port,
                a.grpc_port
            );
            runtime.block_on(trail_cluster::run_executor(
                trail_cluster::ExecutorOptions {
                    scheduler: a.scheduler,
                    bind_host: a.bind_host,
                    external_host: a.external_host,
                    flight_port: a.flight_port,
                    grpc_port: a.grpc_port,
                    concurrent_tasks: a.concurrent_tasks,
                    work_dir: a.work_dir,
                    memory_limit: a.memory_limit.map(|m| m as u64),
                    node: node(a.node),
                },
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run SQL, printing results to stdout and a failed statement to stderr (exit 1).
fn run_printed(setup: &Setup, sql: &str, o: &args::OutputArgs) -> Result<ExitCode> {
    let settings = exec::Settings {
        format: o.format,
        max_rows: o.max_rows,
        timing: o.timing,
    };
    setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let result = exec::run_sql(&engine, sql, &settings, &mut out).await;
        out.flush()?;
        result?;
        Ok(ExitCode::SUCCESS)
    })
}

fn repl(setup: &Setup, format: render::Format) -> Result<ExitCode> {
    let lib = setup.library()?;
    setup
        .runtime()?
        .block_on(async { repl::run(&setup.engine().await?, &lib, format).await })
}

fn sql(setup: &Setup, a: args::SqlArgs) -> Result<ExitCode> {
    let text = match (a.command, a.file) {
        (Some(c), _) => c,
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        }
        (None, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
        // clap requires one of -c and -f.
        (None, None) => String::new(),
    };
    run_printed(setup, &text, &a.output)
}

fn queries(setup: &Setup, a: args::QueriesArgs) -> Result<ExitCode> {
    let lib = setup.library()?;
    let list: Vec<&trail_query::saved::SavedQuery> = match &a.name {
        Some(n) => vec![lib.get(n)?],
        None => lib.iter().collect(),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<serde_json::Value> = list.iter().map(|q| q.to_json()).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.name.is_some() {
        for q in list {
            writeln!(out, "{}: {}", q.name, q.title)?;
            writeln!(out, "  {}", q.description)?;
            if let Some(t) = &q.tactic {
                writeln!(out, "  tactic: {t}")?;
            }
            for p in &q.params {
                match &p.default {
                    Some(d) => writeln!(out, "  --param {}={}  {}", p.name, d, p.help)?,
                    None => writeln!(out, "  --param {}=VALUE (required)  {}", p.name, p.help)?,
                }
            }
            writeln!(out, "\n{}", q.sql)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for q in list {
        writeln!(out, "{:<36} {}{}", q.name, q.title, tactic(q))?;
    }
    writeln!(
        out,
        "\n`trail run NAME [--param k=v]` runs one; `trail queries NAME` shows it."
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `  [TA0001 Initial Access]`, or nothing.
fn tactic(q: &trail_query::saved::SavedQuery) -> String {
    q.tactic
        .as_deref()
        .map(|t| format!("  [{t}]"))
        .unwrap_or_default()
}

fn run_saved(setup: &Setup, a: args::RunArgs) -> Result<ExitCode> {
    let lib = setup.library()?;
    let sql = lib.get(&a.name)?.bind(&a.params.into_iter().collect())?;
    if a.print_sql {
        println!("{sql};");
        return Ok(ExitCode::SUCCESS);
    }
    run_printed(setup, &sql, &a.output)
}

fn lookup(setup: &Setup, a: args::LookupArgs) -> Result<ExitCode> {
    let req = trail_query::lookup::LookupRequest {
        attributes: a.attrs,
        start_us: a.start.map(|t| t.timestamp_micros()),
        end_us: a.end.map(|t| t.timestamp_micros()),
        max_results: a.max_results as usize,
        next_token: a.next_token,
        direction: match a.direction {
            args::LookupDirection::Forward => trail_query::lookup::Direction::Forward,
            args::LookupDirection::Backward => trail_query::lookup::Direction::Backward,
        },
    };
    let page = setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        Ok::<_, anyhow::Error>(trail_query::lookup::lookup(&engine, &req).await?)
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match a.output {
        args::LookupOutput::Json => {
            let text = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            };
            let doc = page.to_json(text(a.start).as_deref(), text(a.end).as_deref());
            writeln!(out, "{}", serde_json::to_string(&doc)?)?;
        }
        args::LookupOutput::Table if page.events.is_empty() => writeln!(out, "no events match")?,
        args::LookupOutput::Table => {
            let batch = page.summary()?;
            let mut r = render::Renderer::new(&mut out, render::Format::Table, None);
            r.start(batch.schema())?;
            r.batch(&batch)?;
            r.finish()?;
            if let Some(t) = &page.next_token {
                writeln!(out, "more events: add --next-token {t}")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn audit_logs(setup: &Setup, a: args::AuditLogsArgs) -> Result<ExitCode> {
    use trail_query::auditlogs::{self, Lang};
    let req = auditlogs::AuditLogRequest {
        conditions: a.conditions(),
        ops: a.log_query_op_json.clone().unwrap_or_default(),
        page_size: a.page_size,
        current_page: a.current_page,
        lang: a.lang.map(|l| match l {
            args::AuditLang::ZhCn => Lang::ZhCn,
            args::AuditLang::EnUs => Lang::EnUs,
        }),
        generation: a.generation,
    };
    let page = setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        Ok::<_, anyhow::Error>(auditlogs::describe_audit_logs(&engine, &req).await?)
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match a.output {
        args::LookupOutput::Json => {
            writeln!(out, "{}", serde_json::to_string(&page.to_json(&req))?)?;
        }
        args::LookupOutput::Table => {
            if page.items.is_empty() {
                writeln!(out, "no audit logs on page {}", page.current_page)?;
            } else {
                let mut r = render::Renderer::new(&mut out, render::Format::Table, None);
                r.start(page.summary.schema())?;
                r.batch(&page.summary)?;
                r.finish()?;
            }
            writeln!(
                out,
                "page {} of {}, {} audit logs match (generation {})",
                page.current_page,
                page.pages(),
                page.total_count,
                page.generation
            )?;
            if page.current_page < page.pages() {
                writeln!(
                    out,
                    "next page: add --current-page {} --generation {}",
                    page.current_page + 1,
                    page.generation
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn trails(setup: &Setup, cmd: args::TrailsCommand) -> Result<ExitCode> {
    use args::TrailsCommand as T;
    use trail_store::trails;
    let json_out = matches!(cmd.common().output, args::LookupOutput::Json);
    let wait = !cmd.common().no_wait;
    let request_id = trail_request_id();
    let open = || trail_store::Store::open(&setup.store);
    let result: std::result::Result<serde_json::Value, trails::TrailsError> = (|| {
        let store = open()?;
        Ok(match cmd {
            T::Create(a) => {
                let t = trails::create(
                    &store,
                    &a.name,
                    a.spec.spec(Some(a.home_region.clone())),
                    wait,
                )?;
                trail_response(&t)
            }
            T::Update(a) => {
                trail_response(&trails::update(&store, &a.name, a.spec.spec(None), wait)?)
            }
            T::List(_) => serde_json::json!({"TrailList": trails::list(&store)?}),
            T::Describe(a) => {
                serde_json::json!({"TrailList": [trails::describe(&store, &a.name)?]})
            }
            T::Delete(a) => {
                trails::delete(&store, &a.name, wait)?;
                serde_json::json!({})
            }
            T::Start(a) => {
                trails::start(&store, &a.name, wait)?;
                serde_json::json!({})
            }
            T::Stop(a) => {
                trails::stop(&store, &a.name, wait)?;
                serde_json::json!({})
            }
            T::Status(a) => {
                let t = trails::describe(&store, &a.name)?;
                serde_json::json!({
                    "IsLogging": t.is_logging(),
                    "StartLoggingTime": t.start_logging_time,
                    "StopLoggingTime": t.stop_logging_time,
                    "LatestDeliveryTime": t.latest_delivery_time,
                    "LatestDeliveryError": t.latest_delivery_error,
                })
            }
        })
    })();
    let mut out = std::io::stdout().lock();
    match result {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("RequestId".into(), request_id.into());
            }
            if json_out {
                writeln!(out, "{}", serde_json::to_string(&v)?)?;
            } else {
                print_trails(&mut out, &v)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(trails::TrailsError::Rule(e)) => {
            if json_out {
                let v = serde_json::json!({
                    "RequestId": request_id,
                    "HostId": "actiontrail.local",
                    "Code": e.code,
                    "Message": e.message,
                    "Parameter": e.parameter,
                    "Value": e.value,
                });
                writeln!(out, "{v}")?;
            }
            eprintln!("error: {}", visible(&e.to_string()));
            Ok(ExitCode::FAILURE)
        }
        Err(trails::TrailsError::Store(e)) => Err(e.into()),
    }
}

fn deliver(setup: &Setup, a: args::DeliverArgs) -> Result<ExitCode> {
    let done = setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        let store = trail_store::Store::open(&setup.store)?;
        Ok::<_, anyhow::Error>(
            trail_query::deliver::deliver(&engine, &store, a.trail.as_deref(), !a.no_wait).await?,
        )
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<serde_json::Value> = done
            .iter()
            .map(|d| {
                serde_json::json!({"trail": d.trail, "events": d.events, "files": d.files,
                    "days_checked": d.days_checked})
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::from(v))?;
    } else if done.is_empty() {
        writeln!(out, "no started trail to deliver (trail trails start NAME)")?;
    } else {
        for d in &done {
            writeln!(
                out,
                "trail {}: {} events delivered in {} files ({} days checked)",
                visible(&d.trail),
                d.events,
                d.files,
                d.days_checked
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// After an ingest or an insight job, deliver for the started trails (nothing to do, and no
/// engine opened, when none is started).
/// Does `store` name a bucket (`s3://`, `oss://`)?
fn is_bucket(store: &Path) -> bool {
    let s = store.to_string_lossy();
    s.starts_with("s3://") || s.starts_with("oss://")
}

fn deliver_started_trails(setup: &Setup) -> Result<()> {
    if is_bucket(&setup.store) {
        return Ok(());
    }
    let Ok(store) = trail_store::Store::open(&setup.store) else {
        return Ok(());
    };
    let trails = trail_store::trails::list(&store).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !trails.iter().any(|t| t.is_logging()) {
        return Ok(());
    }
    let done = setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        Ok::<_, anyhow::Error>(trail_query::deliver::deliver(&engine, &store, None, true).await?)
    })?;
    for d in &done {
        eprintln!(
            "trail {}: {} events delivered in {} files",
            visible(&d.trail),
            d.events,
            d.files
        );
    }
    Ok(())
}

/// CreateTrail's and UpdateTrail's response: the trail's settings.
fn trail_response(t: &trail_store::trails::Trail) -> serde_json::Value {
    serde_json::json!({
        "Name": t.name,
        "HomeRegion": t.home_region,
        "OssBucketName": t.oss_bucket_name,
        "OssKeyPrefix": t.oss_key_prefix,
        "OssWriteRoleArn": t.oss_write_role_arn,
        "SlsProjectArn": t.sls_project_arn,
        "SlsWriteRoleArn": t.sls_write_role_arn,
        "EventRW": t.event_rw,
        "TrailRegion": t.trail_region,
        "IsOrganizationTrail": t.is_organization_trail,
        "LocalDirectory": t.local_directory,
        "AccountId": t.account_id,
        "InsightEnabled": t.insight_enabled,
    })
}

/// A request id in the vendor's form (random).
fn trail_request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let (a, b) = (
        RandomState::new().hash_one(1u8),
        RandomState::new().hash_one(2u8),
    );
    trail_store::uuid_shaped((u128::from(a) << 64) | u128::from(b)).to_uppercase()
}

/// A trails response for people: each trail's fields, or `done`.
fn print_trails(out: &mut impl Write, v: &serde_json::Value) -> Result<()> {
    let show = |x: &serde_json::Value| match x {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => visible(s),
        other => other.to_string(),
    };
    let list: Vec<&serde_json::Value> = match v.get("TrailList") {
        Some(serde_json::Value::Array(l)) => l.iter().collect(),
        _ => vec![v],
    };
    if list.is_empty() {
        writeln!(out, "no trails")?;
    }
    for (k, t) in list.iter().enumerate() {
        if k > 0 {
            writeln!(out)?;
        }
        if let Some(o) = t.as_object() {
            for (key, value) in o {
                if key != "RequestId" {
                    writeln!(out, "{key:<20} {}", show(value))?;
                }
            }
            if o.len() <= 1 {
                writeln!(out, "done")?;
            }
        }
    }
    Ok(())
}

/// Endpoint, region and addressing for buckets, from `trail ingest`'s flags.
fn connect_options(a: &args::IngestArgs) -> trail_ingest::bucket::ConnectOptions {
    let env = trail_ingest::bucket::ConnectOptions::from_env();
    trail_ingest::bucket::ConnectOptions {
        endpoint: a.endpoint.clone().or(env.endpoint),
        region: a.region.clone().or(env.region),
        addressing: a
            .addressing
            .map(|x| match x {
                args::Addressing::Path => trail_ingest::bucket::Addressing::Path,
                args::Addressing::Virtual => trail_ingest::bucket::Addressing::Virtual,
            })
            .or(env.addressing),
        pool: env.pool,
    }
}

fn ingest(store: &Path, a: args::IngestArgs) -> Result<ExitCode> {
    let opts = trail_ingest::IngestOptions {
        normalize: trail_ingest::NormalizeOptions {
            at_timestamp_fallback: a.event_time_fallback,
        },
        threads: usize::from(a.threads),
        memory_budget: (a.memory_budget_mb as usize) << 20,
        max_record_bytes: a.max_record_bytes as usize,
        wait_for_lock: !a.no_wait,
        compact: (!a.no_compact).then(trail_ingest::CompactOptions::default),
        discover: trail_ingest::source::DiscoverOptions {
            full: a.full,
            reread: a.reread,
            bucket: trail_ingest::bucket::BucketOptions {
                connect: connect_options(&a),
                concurrency: usize::from(a.fetch_concurrency),
                lookback_days: a.lookback_days,
            },
        },
        ..Default::default()
    };
    let progress = Arc::new(trail_ingest::Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let show_bar = !a.quiet && !a.json && std::io::stderr().is_terminal();
    let ticker = show_bar.then(|| {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || display::progress_bar(&progress, &done))
    });
    let result = trail_ingest::ingest(store, &a.paths, &opts, &progress, |holder| {
        eprintln!(
            "waiting: store {} is being written by another trail process ({}); use --no-wait to fail instead",
            visible(&store.display().to_string()),
            visible(holder)
        );
    });
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    let summary = result.with_context(|| format!("ingest into {} failed", store.display()))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        print_ingest(&mut out, store, &summary)?;
    }
    Ok(if summary.quarantined > 0 {
        ExitCode::from(EXIT_QUARANTINED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_ingest(
    out: &mut dyn Write,
    store: &Path,
    summary: &trail_ingest::IngestSummary,
) -> Result<()> {
    let mut err = std::io::stderr().lock();
    for bad in summary.errors.iter().take(10) {
        writeln!(err, "bad record: {}", visible(&bad.to_string()))?;
    }
    if summary.quarantined > 10 {
        writeln!(err, "... and {} more bad records", summary.quarantined - 10)?;
    }
    if let Some(q) = &summary.quarantine_file {
        writeln!(
            err,
            "bad records and their errors are kept in {}",
            visible(q)
        )?;
    }
    writeln!(
        out,
        "{} ingested, {} duplicates skipped, {} quarantined ({} files, {}, {:.2}s)",
        summary.ingested,
        summary.duplicates,
        summary.quarantined,
        summary.files_read,
        human_bytes(summary.bytes_read),
        summary.elapsed_secs
    )?;
    for src in &summary.sources {
        if src.unchanged == 0 && src.list_calls.is_none() {
            continue;
        }
        let listing = match (src.list_calls, src.days_listed) {
            (Some(calls), Some(days)) => format!(" ({calls} LIST calls, {days} day folders)"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}: {} found{listing}, {} unchanged since the last ingest, {} read",
            visible(&src.source),
            src.listed,
            src.unchanged,
            src.read
        )?;
    }
    if summary.audit_logs_ingested + summary.audit_log_duplicates > 0 {
        writeln!(
            out,
            "data-audit logs: {} ingested into audit_logs, {} duplicates skipped",
            summary.audit_logs_ingested, summary.audit_log_duplicates
        )?;
    }
    let insight_files = summary.skipped(trail_ingest::source::SkipReason::Insight);
    let other_files = summary.skipped(trail_ingest::source::SkipReason::NotEvents);
    if summary.insight_events + summary.digest_files > 0 || insight_files + other_files > 0 {
        writeln!(
            out,
            "not management events: {} digest files, {insight_files} insight files, {} insight events, {other_files} other files skipped",
            summary.digest_files, summary.insight_events
        )?;
    }
    if summary.ingested + summary.audit_logs_ingested == 0 && summary.quarantined == 0 {
        writeln!(
            out,
            "nothing new: the store is unchanged (generation {})",
            summary.generation
        )?;
    } else {
        writeln!(
            out,
            "store {}: generation {}, {} new files in {} partitions{}",
            visible(&store.display().to_string()),
            summary.generation,
            summary.files_written,
            summary.partitions_written,
            summary
                .compaction
                .as_ref()
                .map(|c| format!(
                    "; compacted {} files into {}",
                    c.files_removed, c.files_written
                ))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

fn compact(store: &Path, a: args::CompactArgs) -> Result<ExitCode> {
    let opts = trail_ingest::CompactOptions {
        min_files: a.min_files as usize,
        threads: usize::from(a.threads),
        ..Default::default()
    };
    let summary = trail_ingest::compact_store(store, &opts, !a.no_wait, |holder| {
        eprintln!("waiting for another trail process ({})", visible(holder));
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else if summary.files_removed == 0 {
        writeln!(out, "nothing to compact")?;
    } else {
        writeln!(
            out,
            "compacted {} files into {} in {} partitions ({} events)",
            summary.files_removed, summary.files_written, summary.partitions, summary.rows
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn vacuum(store: &Path, a: args::VacuumArgs) -> Result<ExitCode> {
    let store = trail_store::Store::open(store)?;
    let mut out = std::io::stdout().lock();
    let Some(bucket) = store.bucket() else {
        // Taking the lock finishes an interrupted commit and empties staging.
        drop(store.lock(true, |holder| {
            eprintln!("waiting for another trail process ({})", visible(holder));
        })?);
        if a.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"files": 0, "bytes": 0, "versions": 0, "kept_young": 0})
            )?;
        } else {
            writeln!(
                out,
                "nothing to vacuum: a store on local disk removes replaced files when it commits"
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let grace = std::time::Duration::from_secs(a.grace_minutes.saturating_mul(60));
    let r = bucket.vacuum(grace, a.dry_run)?;
    if a.json {
        let v = serde_json::json!({"files": r.files, "bytes": r.bytes, "versions": r.versions,
            "kept_young": r.kept_young, "dry_run": a.dry_run});
        writeln!(out, "{v}")?;
    } else {
        let verb = if a.dry_run { "would remove" } else { "removed" };
        writeln!(
            out,
            "{verb} {} unreferenced files ({}) and {} old manifest versions; kept {} younger \
             than {} minutes",
            r.files,
            display::human_bytes(r.bytes),
            r.versions,
            r.kept_young,
            a.grace_minutes
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn info(store: &Path, json: bool) -> Result<ExitCode> {
    let store = trail_store::Store::open(store)?;
    let snap = store.snapshot()?;
    let range = snap.time_range();
    let fmt_t = |t: Option<i64>| {
        t.and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "-".to_owned())
    };
    let (first, last) = (fmt_t(range.map(|r| r.0)), fmt_t(range.map(|r| r.1)));
    let audit = &snap.audit_logs;
    let audit_rows: u64 = audit.iter().map(|(f, _)| f.rows).sum();
    let audit_bytes: u64 = audit.iter().map(|(f, _)| f.bytes).sum();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "store": store.location(),
            "generation": snap.generation,
            "events": snap.total_rows(),
            "files": snap.files.len(),
            "bytes": snap.total_bytes(),
            "partitions": snap.partitions().len(),
            "first_event": first,
            "last_event": last,
            "audit_logs": audit_rows,
            "audit_log_files": audit.len(),
            "audit_log_bytes": audit_bytes,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "store       {}", visible(&store.location()))?;
    writeln!(out, "generation  {}", snap.generation)?;
    writeln!(out, "events      {}", snap.total_rows())?;
    writeln!(
        out,
        "files       {} ({})",
        snap.files.len(),
        human_bytes(snap.total_bytes())
    )?;
    writeln!(out, "partitions  {}", snap.partitions().len())?;
    writeln!(out, "time range  {first} .. {last}")?;
    if !audit.is_empty() {
        writeln!(
            out,
            "audit logs  {audit_rows} in {} files ({})",
            audit.len(),
            human_bytes(audit_bytes)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_options(a: &args::InsightRunArgs) -> trail_insight::RunOptions {
    trail_insight::RunOptions {
        since: a.since,
        until: a.until,
        backtest: a.backtest,
        dry_run: a.dry_run,
    }
}

fn insight(setup: &Setup, cmd: InsightCommand) -> Result<ExitCode> {
    setup.runtime()?.block_on(async {
        match cmd {
            InsightCommand::Export(a) => {
                let (records, files) =
                    trail_insight::export_ndjson(&setup.store, &a.out, a.since, a.until).await?;
                println!(
                    "exported {records} insight records in {files} files under {}",
                    visible(&a.out.display().to_string())
                );
                Ok(ExitCode::SUCCESS)
            }
            InsightCommand::Ip(a) => {
                let job = trail_insight::ip::IpOptions {
                    baseline_days: a.baseline_days,
                    min_history_days: a.min_history_days,
                    min_history_events: a.min_history_events,
                    near_v4: a.near_v4,
                    near_v6: a.near_v6,
                    gap_minutes: a.gap_minutes,
                    whitelist: trail_insight::ip::load_whitelist(&a.whitelist, &a.whitelist_file)?,
                    min_provider_days: a.min_provider_days,
                    table: match a.table {
                        args::IpTableArg::Events => trail_insight::ip::IpTable::Events,
                        args::IpTableArg::AuditLogs => trail_insight::ip::IpTable::AuditLogs,
                    },
                };
                run_insight_job(setup, &job, &a.run).await
            }
            InsightCommand::Rate(a) => {
                let job = trail_insight::rate::RateOptions {
                    baseline_days: a.baseline_days,
                    learn_days: a.learn_days,
                    min_history_days: a.min_history_days,
                    sigmas: a.sigmas,
                    min_per_minute: a.min_per_minute,
                    gap_minutes: a.gap_minutes,
                };
                run_insight_job(setup, &job, &a.run).await
            }
        }
    })
}

async fn run_insight_job<J: trail_insight::Job>(
    setup: &Setup,
    job: &J,
    a: &args::InsightRunArgs,
) -> Result<ExitCode> {
    let engine = setup.engine().await?;
    let store = trail_store::Store::open(&setup.store)?;
    let report = trail_insight::run_job(
        &engine,
        &store,
        job,
        &run_options(a),
        !a.no_wait,
        |holder| {
            eprintln!(
                "waiting for the store's writer lock (held by {}); use --no-wait to fail instead",
                visible(holder)
            )
        },
    )
    .await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        print_insights(&mut out, &report, a.max_rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_insights(out: &mut dyn Write, r: &trail_insight::Report, max_rows: usize) -> Result<()> {
    let f = &r.findings;
    let (Some(since), Some(until)) = (f.since, f.until) else {
        writeln!(
            out,
            "{}: no days to judge (the store is empty, or already judged)",
            r.title
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "{}: judged {since} to {until} in {:.2}s: {} found{}",
        r.title,
        r.seconds,
        f.insights.len(),
        match &r.written {
            None => " (dry run: nothing written)".to_owned(),
            Some(w) if w.existing > 0 => {
                format!(", {} new, {} already stored", w.new, w.existing)
            }
            Some(w) => format!(", {} written to the insights table", w.new),
        }
    )?;
    let counts: Vec<String> = f.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(out, "  {}", counts.join(", "))?;
    for note in &f.notes {
        writeln!(out, "  note: {note}")?;
    }
    if !f.insights.is_empty() {
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<14}  {:<39}  {:<20}  {:>6}",
            "start", "end", "type", "region", "object", "identity", "events"
        )?;
    }
    for i in f.insights.iter().take(max_rows) {
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<14}  {:<39}  {:<20}  {:>6}",
            i.start.format("%Y-%m-%dT%H:%M:%SZ"),
            i.end.format("%Y-%m-%dT%H:%M:%SZ"),
            i.insight_type.as_str(),
            visible(i.region.as_deref().unwrap_or("")),
            visible(&i.object),
            visible(&i.who()),
            i.insight_count
        )?;
    }
    if f.insights.len() > max_rows {
        writeln!(
            out,
            "... {} more (query the insights table)",
            f.insights.len() - max_rows
        )?;
    }
    Ok(())
}

/// `path: reason` lines for rules that cannot be used.
fn print_rejected(out: &mut dyn Write, rejected: &[trail_detect::Rejected]) -> Result<()> {
    for r in rejected {
        writeln!(
            out,
            "  skipped {}{}: {}",
            visible(&r.path.display().to_string()),
            r.title
                .as_deref()
                .map(|t| format!(" ({})", visible(t)))
                .unwrap_or_default(),
            visible(&r.reason)
        )?;
    }
    Ok(())
}

fn sigma_check(a: args::SigmaCheckArgs) -> Result<ExitCode> {
    let loaded = trail_detect::load_sigma(&a.rules)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "compiled": loaded.rules.iter().map(|r| serde_json::json!({
                "path": r.path.display().to_string(), "id": r.id(), "title": r.rule.title,
                "level": r.level().as_str(),
            })).collect::<Vec<_>>(),
            "skipped": loaded.rejected.iter().map(|r| serde_json::json!({
                "path": r.path.display().to_string(), "title": r.title, "reason": r.reason,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &loaded.rules {
        writeln!(
            out,
            "  ok      {} ({}, {})",
            visible(&r.path.display().to_string()),
            visible(&r.rule.title),
            r.level().as_str()
        )?;
    }
    print_rejected(&mut out, &loaded.rejected)?;
    writeln!(
        out,
        "{} of {} rules compile; {} skipped",
        loaded.rules.len(),
        loaded.rules.len() + loaded.rejected.len(),
        loaded.rejected.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn sigma_run(setup: &Setup, a: args::SigmaRunArgs) -> Result<ExitCode> {
    let loaded = trail_detect::load_sigma(&a.rules)?;
    if !loaded.rejected.is_empty() {
        let mut err = std::io::stderr().lock();
        print_rejected(&mut err, &loaded.rejected)?;
    }
    let matches = setup.runtime()?.block_on(async {
        let engine = setup.engine().await?;
        let filter = trail_detect::job::time_filter(a.since, a.until);
        Ok::<_, anyhow::Error>(trail_detect::job::scan_sigma(&engine, &loaded.rules, filter).await?)
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        for m in &matches {
            let r = &loaded.rules[m.rule];
            let event: serde_json::Value = serde_json::from_str(&m.raw)
                .unwrap_or_else(|_| serde_json::Value::String(m.raw.clone()));
            let v = serde_json::json!({
                "ruleId": r.id(), "ruleTitle": r.rule.title, "level": r.level().as_str(),
                "tags": r.rule.tags, "event": event,
            });
            writeln!(out, "{v}")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<20}  {:<8}  {:<40}  {:<28}  {:<20}  {:<39}",
        "eventTime", "level", "rule", "eventName", "identity", "sourceIpAddress"
    )?;
    for m in matches.iter().take(a.max_rows) {
        let r = &loaded.rules[m.rule];
        writeln!(
            out,
            "{:<20}  {:<8}  {:<40}  {:<28}  {:<20}  {:<39}",
            m.time.format("%Y-%m-%dT%H:%M:%SZ"),
            r.level().as_str(),
            visible(&r.rule.title),
            visible(m.event_name.as_deref().unwrap_or("")),
            visible(m.identity.as_deref().unwrap_or("")),
            visible(m.source_ip.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(
        out,
        "{} matching events of {} rules ({} listed)",
        matches.len(),
        loaded.rules.len(),
        matches.len().min(a.max_rows)
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn detect(setup: &Setup, a: args::DetectArgs) -> Result<ExitCode> {
    let loaded = trail_detect::load_sigma(&a.rules)?;
    let analyses: Vec<trail_detect::job::AnalysisDetection> = setup
        .library()?
        .iter()
        .filter_map(|q| {
            let level = trail_detect::Level::parse(q.detection.as_deref()?)?;
            Some(trail_detect::job::AnalysisDetection {
                query: q.clone(),
                level,
            })
        })
        .collect();
    let report = setup.runtime()?.block_on(async {
        let store = trail_store::Store::open(&setup.store)?;
        let _guard = if a.dry_run {
            None
        } else {
            Some(store.lock(!a.no_wait, |holder| {
                eprintln!(
                    "waiting for the store's writer lock (held by {}); use --no-wait to fail instead",
                    visible(holder)
                )
            })?)
        };
        let engine = setup.engine().await?;
        let opts = trail_detect::job::DetectOptions {
            since: a.since,
            dry_run: a.dry_run,
        };
        Ok::<_, anyhow::Error>(
            trail_detect::job::run(&engine, &store, &loaded.rules, &analyses, &opts).await?,
        )
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        let mut v = report.to_json();
        v["skippedRules"] = serde_json::json!(
            loaded
                .rejected
                .iter()
                .map(|r| serde_json::json!({
                    "path": r.path.display().to_string(), "title": r.title, "reason": r.reason,
                }))
                .collect::<Vec<_>>()
        );
        writeln!(out, "{v}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "detect: {} ({} partitions) with {} Sigma rules and {} analyses in {:.2}s: {} findings{}",
        report.scope,
        report.partitions,
        loaded.rules.len(),
        analyses.len(),
        report.seconds,
        report.findings.len(),
        if report.dry_run {
            " (dry run: nothing stored)".to_owned()
        } else {
            format!(
                ", {} new or changed, {} already stored",
                report.new, report.unchanged
            )
        }
    )?;
    if !loaded.rejected.is_empty() {
        writeln!(out, "{} rules skipped:", loaded.rejected.len())?;
        print_rejected(&mut out, &loaded.rejected)?;
    }
    if !report.findings.is_empty() {
        writeln!(
            out,
            "{:<20}  {:<8}  {:<40}  {:<24}  {:<39}  {:>6}",
            "firstSeen", "level", "rule", "identity", "sourceIpAddress", "events"
        )?;
    }
    let mut shown: Vec<&trail_detect::job::Finding> = report.findings.iter().collect();
    shown.sort_by(|x, y| y.level.cmp(&x.level).then(x.first_seen.cmp(&y.first_seen)));
    for f in shown.iter().take(a.max_rows) {
        writeln!(
            out,
            "{:<20}  {:<8}  {:<40}  {:<24}  {:<39}  {:>6}",
            f.first_seen.format("%Y-%m-%dT%H:%M:%SZ"),
            f.level.as_str(),
            visible(&f.rule_title),
            visible(f.identity.as_deref().unwrap_or("")),
            visible(f.source_ip.as_deref().unwrap_or("")),
            f.events
        )?;
    }
    if report.findings.len() > a.max_rows {
        writeln!(
            out,
            "... {} more (trail run findings_summary, or query the findings table)",
            report.findings.len() - a.max_rows
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn gen_events(a: args::GenArgs) -> Result<ExitCode> {
    if a.world {
        return gen_world(a);
    }
    let cfg = trail_gen::GenConfig {
        seed: a.seed,
        events: a.events,
        days: a.days,
        regions: usize::from(a.regions),
        format: match a.format {
            args::GenFormat::Array => trail_gen::FileFormat::Array,
            args::GenFormat::Ndjson => trail_gen::FileFormat::Ndjson,
            args::GenFormat::Records => trail_gen::FileFormat::Records,
        },
        anomalies: a.anomalies,
        ..Default::default()
    };
    let stats = trail_gen::generate(&cfg, &a.out)?;
    let audit = if a.audit_logs > 0 {
        trail_gen::audit::generate_audit_logs(&cfg, a.audit_logs, a.anomalies, &a.out)?
    } else {
        trail_gen::audit::AuditStats::default()
    };
    if let Some(path) = &a.labels {
        let labels: Vec<serde_json::Value> = stats
            .labels
            .iter()
            .map(|l| l.to_json())
            .chain(audit.labels.iter().map(|l| l.to_json()))
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&labels)?)
            .with_context(|| format!("writing labels to {}", path.display()))?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"events": stats.events, "files": stats.files,
                "bytes_uncompressed": stats.bytes_uncompressed, "audit_logs": audit.logs,
                "audit_log_files": audit.files,
                "audit_log_bytes_uncompressed": audit.bytes_uncompressed})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "generated {} events in {} files ({} uncompressed) under {}",
        stats.events,
        stats.files,
        human_bytes(stats.bytes_uncompressed),
        visible(&a.out.display().to_string())
    );
    if audit.logs > 0 {
        println!(
            "generated {} data-audit logs in {} files ({} uncompressed) under {}",
            audit.logs,
            audit.files,
            human_bytes(audit.bytes_uncompressed),
            visible(&a.out.join("DataAudit").display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn gen_world(a: args::GenArgs) -> Result<ExitCode> {
    let defaults = trail_gen::world::WorldConfig::default();
    let cfg = trail_gen::world::WorldConfig {
        seed: a.seed,
        days: a.days,
        accounts: a.accounts as usize,
        identities: a.identities as usize,
        anomalies: a.anomalies,
        baseline_days: defaults.baseline_days.min(a.days.saturating_sub(1)),
        regions: usize::from(a.regions).min(defaults.regions),
        ..defaults
    };
    let world = trail_gen::world::generate_world(&cfg, &a.out)?;
    if let Some(path) = &a.labels {
        std::fs::write(path, serde_json::to_vec_pretty(&world.labels_json())?)
            .with_context(|| format!("writing labels to {}", path.display()))?;
    }
    if let Some(path) = &a.asn_csv {
        std::fs::write(path, world.asn_csv())
            .with_context(|| format!("writing the ASN table to {}", path.display()))?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"events": world.events, "files": world.files,
                "bytes_uncompressed": world.bytes_uncompressed,
                "anomalies": world.anomalies.len(), "trips": world.trips.len()})
        );
    } else {
        println!(
            "generated the IP-churn world: {} events of {} identities in {} files ({} uncompressed), \
             {} stolen-key uses, {} trips, under {}",
            world.events,
            world.identities.len(),
            world.files,
            human_bytes(world.bytes_uncompressed),
            world.anomalies.len(),
            world.trips.len(),
            visible(&a.out.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write `trail.1` and a page per command (`trail-insight-ip.1`, ...) into `dir`.
fn man(dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fn write(cmd: clap::Command, name: String, dir: &Path, n: &mut usize) -> Result<()> {
        let cmd = cmd.name(name.clone());
        let path = dir.join(format!("{name}.1"));
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        clap_mangen::Man::new(cmd.clone()).render(&mut file)?;
        *n += 1;
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                write(sub.clone(), format!("{name}-{}", sub.get_name()), dir, n)?;
            }
        }
        Ok(())
    }
    let mut n = 0;
    let mut cmd = Cli::command();
    cmd.build();
    write(cmd, "trail".to_owned(), dir, &mut n)?;
    println!(
        "wrote {n} manual pages to {}",
        visible(&dir.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}
