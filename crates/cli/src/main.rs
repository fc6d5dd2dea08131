//! `trail`: an embedded analytical query engine for cloud audit events.
//!
//! The binary parses arguments, calls the library crates and prints. Exit codes: 0 success,
//! 1 error, 2 usage error, 3 the command succeeded but quarantined bad records.

mod display;
mod exec;
mod render;
mod repl;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use display::{human_bytes, visible};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code when records were quarantined.
const EXIT_QUARANTINED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "trail",
    version,
    about = "SQL over your cloud audit events (ActionTrail, CloudTrail)"
)]
struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "TRAIL_STORE",
        default_value = "trail-store"
    )]
    store: PathBuf,
    /// Memory limit for queries (e.g. 512M, 4G); sorts, aggregates and joins spill to disk
    /// beyond it. Default: no limit.
    #[arg(long, global = true, env = "TRAIL_MEMORY_LIMIT")]
    memory_limit: Option<String>,
    /// A directory of your own saved queries (`*.sql`), added to the built-in library.
    #[arg(long = "queries", global = true, env = "TRAIL_QUERIES")]
    queries_dir: Option<PathBuf>,
    /// With no command, trail opens the interactive SQL shell.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest event files (JSON, NDJSON, gzip; files, directories, `-` for stdin).
    Ingest(IngestArgs),
    /// Merge small files of each partition (also done automatically after ingest).
    Compact(CompactArgs),
    /// Show what the store holds: partitions, files, events, time range.
    Info {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run SQL against the store.
    Sql(SqlArgs),
    /// The interactive SQL shell (also what `trail` alone opens).
    Repl {
        #[arg(long, value_enum, default_value = "table")]
        format: render::Format,
    },
    /// List the saved analyses, or show one (its parameters and SQL).
    Queries {
        /// Show this query in full.
        name: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a saved analysis.
    Run(RunArgs),
    /// Look events up by attribute, like the LookupEvents API, on the local store.
    Lookup(LookupArgs),
    /// Find insight events: unusual source IPs per identity, unusual API call and error rates.
    #[command(subcommand)]
    Insight(InsightCommand),
    /// Generate realistic ActionTrail events (a delivery tree) for tests and benchmarks.
    Gen(GenArgs),
}

#[derive(Subcommand)]
enum InsightCommand {
    /// IpInsight: operations of an identity from a source IP unusual for it.
    Ip(IpArgs),
    /// ApiCallRateInsight and ApiErrorRateInsight: write-call and error rates per minute far
    /// above their baseline, per account, region and event name.
    Rate(RateArgs),
    /// Write every stored insight as NDJSON under DIR in the
    /// `Actiontrail-Insight/<region>/<YYYY>/<MM>/<DD>/` layout.
    Export {
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
}

#[derive(Args)]
struct InsightRunArgs {
    /// First day to judge (YYYY-MM-DD). Default: the last day judged before (again, since it
    /// may have grown), or the store's first day.
    #[arg(long)]
    since: Option<chrono::NaiveDate>,
    /// Last day to judge. Default: the store's last day.
    #[arg(long)]
    until: Option<chrono::NaiveDate>,
    /// Replay history day by day from --since (default: the store's first day), as if the job
    /// had run every day; findings already stored are not written twice.
    #[arg(long)]
    backtest: bool,
    /// Report findings without writing them to the store.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON (findings as insight records).
    #[arg(long)]
    json: bool,
    /// Most findings listed (all are written).
    #[arg(long, default_value_t = 40)]
    max_rows: usize,
}

#[derive(Args)]
struct IpArgs {
    #[command(flatten)]
    run: InsightRunArgs,
    /// Days of history an identity's usual IPs are learned from.
    #[arg(long, default_value_t = 14)]
    baseline_days: u32,
    /// Active days an identity needs in the baseline to be judged on its own (else its
    /// account's baseline is used).
    #[arg(long, default_value_t = 3)]
    min_history_days: u32,
    /// Events an identity needs in the baseline to be judged on its own.
    #[arg(long, default_value_t = 20)]
    min_history_events: u64,
    /// An IPv4 address in the same /N network as a usual IP is near, not unusual (32: off).
    #[arg(long, default_value_t = 24)]
    near_v4: u8,
    /// An IPv6 address in the same /N network as a usual IP is near, not unusual (128: off).
    #[arg(long, default_value_t = 64)]
    near_v6: u8,
    /// Unusual operations less than this many minutes apart form one insight.
    #[arg(long, default_value_t = 60)]
    gap_minutes: i64,
    /// IPs or CIDRs never reported, comma-separated (may be repeated).
    #[arg(long, value_delimiter = ',')]
    whitelist: Vec<String>,
    /// A file of IPs or CIDRs never reported, one per line (`#` comments).
    #[arg(long)]
    whitelist_file: Vec<PathBuf>,
}

#[derive(Args)]
struct RateArgs {
    #[command(flatten)]
    run: InsightRunArgs,
    /// Days before a minute's day its baseline mean is learned from.
    #[arg(long, default_value_t = 7)]
    baseline_days: u32,
    /// Days before a minute's day its baseline deviation is learned from.
    #[arg(long, default_value_t = 28)]
    learn_days: u32,
    /// Days of store history needed before a day is judged.
    #[arg(long, default_value_t = 7)]
    min_history_days: u32,
    /// A minute is unusual above mean + this many standard deviations...
    #[arg(long, default_value_t = 6.0)]
    sigmas: f64,
    /// ...and with at least this many calls.
    #[arg(long, default_value_t = 10)]
    min_per_minute: u64,
    /// Unusual minutes at most this many minutes apart form one insight.
    #[arg(long, default_value_t = 5)]
    gap_minutes: i64,
}

#[derive(Args)]
struct IngestArgs {
    /// Files or directories to ingest; `-` reads standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long, env = "TRAIL_JSON")]
    json: bool,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    no_wait: bool,
    /// Decoder threads (0: one per core).
    #[arg(long, env = "TRAIL_THREADS", default_value_t = 0)]
    threads: usize,
    /// MiB of decoded events buffered before a partition is written out.
    #[arg(long, env = "TRAIL_MEMORY_BUDGET_MB", default_value_t = 160)]
    memory_budget_mb: usize,
    /// Records larger than this many bytes are quarantined.
    #[arg(long, env = "TRAIL_MAX_RECORD_BYTES", default_value_t = 16 << 20)]
    max_record_bytes: usize,
    /// When a record has no eventTime, use Logstash's `@timestamp` instead of quarantining it.
    #[arg(long, env = "TRAIL_EVENT_TIME_FALLBACK")]
    event_time_fallback: bool,
    /// Do not compact the partitions this ingest touched.
    #[arg(long, env = "TRAIL_NO_COMPACT")]
    no_compact: bool,
    /// Show no progress bar even on a terminal.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct CompactArgs {
    /// Compact a partition once it has at least this many small files.
    #[arg(long, default_value_t = 2)]
    min_files: usize,
    /// Fail at once if another trail process is writing the store.
    #[arg(long)]
    no_wait: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: render::Format,
    /// Show at most this many rows of a result (default: all).
    #[arg(long)]
    max_rows: Option<usize>,
    /// Print how long each statement took.
    #[arg(long)]
    timing: bool,
}

#[derive(Args)]
struct SqlArgs {
    /// The SQL to run.
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    command: Option<String>,
    /// A file of SQL to run (`-` reads standard input).
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The saved query (`trail queries` lists them).
    name: String,
    /// A parameter, `name=value` (repeatable).
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Print the SQL that would run instead of running it.
    #[arg(long)]
    print_sql: bool,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum LookupDirection {
    Forward,
    Backward,
}

#[derive(Clone, Copy, ValueEnum)]
enum LookupOutput {
    Json,
    Table,
}

#[derive(Args)]
struct LookupArgs {
    /// `Key=Value`; keys: ServiceName, EventName, User, EventId, ResourceType, ResourceName,
    /// EventRW, EventAccessKeyId, SourceIpAddress, EventType, RoleName. Repeatable: different
    /// keys must all match, values of one key any.
    #[arg(long = "attr", short = 'a')]
    attrs: Vec<String>,
    /// Events at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    start: Option<String>,
    /// Events before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    end: Option<String>,
    /// Events per page.
    #[arg(long, default_value_t = 50)]
    max_results: usize,
    /// The token printed by the previous page.
    #[arg(long)]
    next_token: Option<String>,
    /// `backward`: newest first (the vendor's order); `forward`: oldest first.
    #[arg(long, value_enum, default_value = "backward")]
    direction: LookupDirection,
    /// `json`: the original records with the next token; `table`: a summary line per event.
    #[arg(long, value_enum, default_value = "table")]
    output: LookupOutput,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenFormat {
    Array,
    Ndjson,
    Records,
}

#[derive(Args)]
struct GenArgs {
    /// Where to write the delivery tree.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 16)]
    regions: usize,
    #[arg(long, value_enum, default_value = "array")]
    format: GenFormat,
    /// Inject this many labelled anomalies of each kind (new IP, new network, write burst,
    /// error storm, and the nearby and whitelisted IPs that must raise nothing).
    #[arg(long, default_value_t = 0)]
    anomalies: u32,
    /// Write the labels of the injected anomalies to this file (a JSON array).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // `trail sql ... | head` must end quietly: restore the default SIGPIPE-as-EOF handling by
    // treating broken-pipe write errors as success below.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TRAIL_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{}", display::visible_table(&msg));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let query = QueryOpts {
        memory_limit: cli.memory_limit.clone(),
        queries_dir: cli.queries_dir.clone(),
    };
    match cli.command {
        Some(Command::Ingest(args)) => ingest(&cli.store, args),
        Some(Command::Compact(args)) => compact(&cli.store, args),
        Some(Command::Info { json }) => info(&cli.store, json),
        Some(Command::Sql(args)) => sql(&cli.store, &query, args),
        Some(Command::Repl { format }) => repl(&cli.store, &query, format),
        None => repl(&cli.store, &query, render::Format::Table),
        Some(Command::Queries { name, json }) => queries(&query, name, json),
        Some(Command::Run(args)) => run_saved(&cli.store, &query, args),
        Some(Command::Lookup(args)) => lookup(&cli.store, &query, args),
        Some(Command::Insight(cmd)) => insight(&cli.store, &query, cmd),
        Some(Command::Gen(args)) => gen_events(args),
    }
}

/// Options every query command shares.
struct QueryOpts {
    memory_limit: Option<String>,
    queries_dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn open_engine(store: &std::path::Path, q: &QueryOpts) -> Result<trail_query::Engine> {
    if !store.join("_trail").is_dir() {
        anyhow::bail!(
            "{} is not a trail store; ingest events first (`trail ingest --store {} PATH`) or \
             point --store / TRAIL_STORE at one",
            visible(&store.display().to_string()),
            visible(&store.display().to_string())
        );
    }
    let memory_limit = q
        .memory_limit
        .as_deref()
        .map(trail_query::parse_memory_size)
        .transpose()?;
    Ok(trail_query::Engine::open(
        store,
        trail_query::EngineOptions {
            memory_limit,
            threads: 0,
        },
    )
    .await?)
}

fn library(q: &QueryOpts) -> Result<trail_query::saved::Library> {
    Ok(trail_query::saved::Library::load(q.queries_dir.as_deref())?)
}

fn settings(o: &OutputArgs) -> exec::Settings {
    exec::Settings {
        format: o.format,
        max_rows: o.max_rows,
        timing: o.timing,
    }
}

/// Run SQL, printing results to stdout and a failure to stderr (exit 1).
fn run_printed(
    store: &std::path::Path,
    q: &QueryOpts,
    sql: &str,
    o: &OutputArgs,
) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = open_engine(store, q).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match exec::run_sql(&engine, sql, &settings(o), &mut out).await {
            Ok(()) => {
                out.flush()?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let _ = out.flush();
                if let Some(f) = e.downcast_ref::<exec::Failure>() {
                    eprintln!("{}", display::visible_table(&f.0));
                    Ok(ExitCode::FAILURE)
                } else {
                    Err(e)
                }
            }
        }
    })
}

fn repl(store: &std::path::Path, q: &QueryOpts, format: render::Format) -> Result<ExitCode> {
    let lib = library(q)?;
    runtime()?.block_on(async {
        let engine = open_engine(store, q).await?;
        repl::run(&engine, &lib, format).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn queries(q: &QueryOpts, name: Option<String>, json: bool) -> Result<ExitCode> {
    let lib = library(q)?;
    let list: Vec<&trail_query::saved::SavedQuery> = match &name {
        Some(n) => vec![lib.get(n)?],
        None => lib.iter().collect(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|q| {
                serde_json::json!({
                    "name": q.name, "title": q.title, "description": q.description,
                    "tactic": q.tactic, "sql": q.sql,
                    "params": q.params.iter().map(|p| serde_json::json!({"name": p.name, "default": p.default, "help": p.help, "required": p.default.is_none()})).collect::<Vec<_>>(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if name.is_some() {
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
        writeln!(
            out,
            "{:<36} {}{}",
            q.name,
            q.title,
            q.tactic
                .as_deref()
                .map(|t| format!("  [{t}]"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "\n`trail run NAME [--param k=v]` runs one; `trail queries NAME` shows it."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_saved(store: &std::path::Path, q: &QueryOpts, args: RunArgs) -> Result<ExitCode> {
    let lib = library(q)?;
    let saved = lib.get(&args.name)?;
    let params = trail_query::saved::parse_params(&args.params)?;
    let sql = saved.bind(&params)?;
    if args.print_sql {
        println!("{sql};");
        return Ok(ExitCode::SUCCESS);
    }
    run_printed(store, q, &sql, &args.output)
}

/// Parse a user time: RFC 3339, or a date (midnight UTC), or `YYYY-MM-DD HH:MM:SS` (UTC).
fn parse_user_time(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc().timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_micros());
    }
    anyhow::bail!(
        "`{}` is not a time; write 2024-05-01, 2024-05-01T08:00:00Z or 2024-05-01 08:00:00 (UTC)",
        visible(s)
    )
}

fn lookup(store: &std::path::Path, q: &QueryOpts, args: LookupArgs) -> Result<ExitCode> {
    let mut attributes = Vec::new();
    for a in &args.attrs {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("--attr `{}` must be Key=Value", visible(a)))?;
        attributes.push((k.trim().to_owned(), v.to_owned()));
    }
    let req = trail_query::lookup::LookupRequest {
        attributes,
        start_us: args.start.as_deref().map(parse_user_time).transpose()?,
        end_us: args.end.as_deref().map(parse_user_time).transpose()?,
        max_results: args.max_results,
        next_token: args.next_token.clone(),
        direction: match args.direction {
            LookupDirection::Forward => trail_query::lookup::Direction::Forward,
            LookupDirection::Backward => trail_query::lookup::Direction::Backward,
        },
    };
    runtime()?.block_on(async {
        let engine = open_engine(store, q).await?;
        let page = trail_query::lookup::lookup(&engine, &req).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match args.output {
            LookupOutput::Json => {
                let mut events: Vec<Box<serde_json::value::RawValue>> = Vec::new();
                for b in &page.batches {
                    let raw = b.column(b.num_columns() - 1);
                    let f = datafusion::arrow::util::display::ArrayFormatter::try_new(
                        raw.as_ref(),
                        &Default::default(),
                    )?;
                    for i in 0..b.num_rows() {
                        let text = f.value(i).to_string();
                        let v = serde_json::value::RawValue::from_string(text.clone())
                            .or_else(|_| serde_json::value::to_raw_value(&text))?;
                        events.push(v);
                    }
                }
                let doc = serde_json::json!({
                    "Events": events,
                    "NextToken": page.next_token,
                    "StartTime": args.start,
                    "EndTime": args.end,
                });
                writeln!(out, "{}", serde_json::to_string(&doc)?)?;
            }
            LookupOutput::Table => {
                let mut r = render::Renderer::new(&mut out, render::Format::Table, None);
                let mut started = false;
                for b in &page.batches {
                    let b = b.project(&(0..b.num_columns() - 1).collect::<Vec<_>>())?;
                    if !started {
                        r.start(b.schema())?;
                        started = true;
                    }
                    r.batch(&b)?;
                }
                if started {
                    r.finish()?;
                } else {
                    drop(r);
                    writeln!(out, "no events match")?;
                }
                if let Some(t) = &page.next_token {
                    writeln!(out, "more events: add --next-token {t}")?;
                }
            }
        }
        out.flush()?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn ingest(store: &std::path::Path, args: IngestArgs) -> Result<ExitCode> {
    let opts = trail_ingest::IngestOptions {
        normalize: trail_ingest::NormalizeOptions {
            at_timestamp_fallback: args.event_time_fallback,
        },
        threads: args.threads,
        memory_budget: args.memory_budget_mb.max(16) << 20,
        max_record_bytes: args.max_record_bytes,
        wait_for_lock: !args.no_wait,
        compact: (!args.no_compact).then(trail_ingest::CompactOptions::default),
        ..Default::default()
    };
    let progress = Arc::new(trail_ingest::Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let show_bar = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let ticker = show_bar.then(|| {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || display::progress_bar(&progress, &done))
    });
    let result = trail_ingest::ingest(store, &args.paths, &opts, &progress, |holder| {
        eprintln!(
            "waiting: store {} is being written by another trail process ({}); use --no-wait to fail instead",
            store.display(),
            visible(holder)
        );
    });
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    let summary = result.with_context(|| format!("ingest into {} failed", store.display()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
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
        let count = |r: trail_ingest::source::SkipReason| {
            summary
                .skipped_files
                .iter()
                .filter(|s| s.reason == r)
                .count()
        };
        let insight_files = count(trail_ingest::source::SkipReason::Insight);
        let other_files = count(trail_ingest::source::SkipReason::NotEvents);
        if summary.insight_events + summary.digest_files > 0 || insight_files + other_files > 0 {
            writeln!(
                out,
                "not management events: {} digest files, {} insight files, {} insight events, {} other files skipped",
                summary.digest_files, insight_files, summary.insight_events, other_files
            )?;
        }
        if summary.ingested == 0 && summary.quarantined == 0 {
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
    }
    Ok(if summary.quarantined > 0 {
        ExitCode::from(EXIT_QUARANTINED)
    } else {
        ExitCode::SUCCESS
    })
}

fn compact(store: &std::path::Path, args: CompactArgs) -> Result<ExitCode> {
    let opts = trail_ingest::CompactOptions {
        min_files: args.min_files,
        ..Default::default()
    };
    let summary = trail_ingest::compact_store(store, &opts, !args.no_wait, |holder| {
        eprintln!("waiting for another trail process ({})", visible(holder));
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
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

fn info(store: &std::path::Path, json: bool) -> Result<ExitCode> {
    let store = trail_store::Store::open(store)?;
    let snap = store.snapshot()?;
    let parts = snap.partitions();
    let min = snap.files.iter().map(|(f, _)| f.min_time_us).min();
    let max = snap.files.iter().map(|(f, _)| f.max_time_us).max();
    let fmt_t = |t: Option<i64>| t.and_then(format_time).unwrap_or_else(|| "-".to_owned());
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "store": store.root().display().to_string(),
            "generation": snap.generation,
            "events": snap.total_rows(),
            "files": snap.files.len(),
            "bytes": snap.total_bytes(),
            "partitions": parts.len(),
            "first_event": fmt_t(min),
            "last_event": fmt_t(max),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "store       {}",
        visible(&store.root().display().to_string())
    )?;
    writeln!(out, "generation  {}", snap.generation)?;
    writeln!(out, "events      {}", snap.total_rows())?;
    writeln!(
        out,
        "files       {} ({})",
        snap.files.len(),
        human_bytes(snap.total_bytes())
    )?;
    writeln!(out, "partitions  {}", parts.len())?;
    writeln!(out, "time range  {} .. {}", fmt_t(min), fmt_t(max))?;
    Ok(ExitCode::SUCCESS)
}

fn format_time(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn sql(store: &std::path::Path, q: &QueryOpts, args: SqlArgs) -> Result<ExitCode> {
    let text = match (args.command, args.file) {
        (Some(c), _) => c,
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        }
        (None, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => anyhow::bail!("give the SQL with -c \"SELECT ...\" or -f FILE"),
    };
    run_printed(store, q, &text, &args.output)
}

fn run_options(a: &InsightRunArgs) -> trail_insight::RunOptions {
    trail_insight::RunOptions {
        since: a.since,
        until: a.until,
        backtest: a.backtest,
        dry_run: a.dry_run,
    }
}

fn insight(store: &std::path::Path, q: &QueryOpts, cmd: InsightCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = open_engine(store, q).await?;
        let st = trail_store::Store::open(store)?;
        match cmd {
            InsightCommand::Export { out, since, until } => {
                let (records, files) =
                    trail_insight::export_ndjson(store, &out, since, until).await?;
                println!(
                    "exported {records} insight records in {files} files under {}",
                    visible(&out.display().to_string())
                );
                Ok(ExitCode::SUCCESS)
            }
            InsightCommand::Ip(a) => {
                let mut whitelist = Vec::new();
                for item in &a.whitelist {
                    whitelist.extend(trail_insight::ip::parse_whitelist(item, "--whitelist")?);
                }
                for f in &a.whitelist_file {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("reading whitelist {}", f.display()))?;
                    whitelist.extend(trail_insight::ip::parse_whitelist(
                        &text,
                        &f.display().to_string(),
                    )?);
                }
                let opts = trail_insight::ip::IpOptions {
                    baseline_days: a.baseline_days,
                    min_history_days: a.min_history_days,
                    min_history_events: a.min_history_events,
                    near_v4: a.near_v4,
                    near_v6: a.near_v6,
                    gap_minutes: a.gap_minutes,
                    whitelist,
                };
                let run = run_options(&a.run);
                let _guard = lock_for_insights(&st, &run)?;
                let started = std::time::Instant::now();
                let report = trail_insight::ip::run(&engine, &st, &opts, &run).await?;
                let written = trail_insight::persist_run(
                    &engine,
                    &st,
                    &run,
                    &report.insights,
                    report.until,
                    trail_insight::ip::JOB,
                )
                .await?;
                let counts = serde_json::json!({
                    "events": report.events, "usual": report.usual, "nearby": report.nearby,
                    "whitelisted": report.whitelisted, "notIp": report.not_ip,
                    "littleHistory": report.little_history,
                    "accountBaseline": report.account_baseline, "unusual": report.unusual,
                });
                print_insights(
                    "IpInsight",
                    &a.run,
                    (report.since, report.until),
                    counts,
                    &report.insights,
                    written,
                    started.elapsed(),
                )
            }
            InsightCommand::Rate(a) => {
                let opts = trail_insight::rate::RateOptions {
                    baseline_days: a.baseline_days,
                    learn_days: a.learn_days,
                    min_history_days: a.min_history_days,
                    sigmas: a.sigmas,
                    min_per_minute: a.min_per_minute,
                    gap_minutes: a.gap_minutes,
                };
                let run = run_options(&a.run);
                let _guard = lock_for_insights(&st, &run)?;
                let started = std::time::Instant::now();
                let report = trail_insight::rate::run(&engine, &st, &opts, &run).await?;
                let written = trail_insight::persist_run(
                    &engine,
                    &st,
                    &run,
                    &report.insights,
                    report.until,
                    trail_insight::rate::JOB,
                )
                .await?;
                let counts = serde_json::json!({
                    "series": report.series, "unusualMinutes": report.unusual_minutes,
                });
                print_insights(
                    "rate insights",
                    &a.run,
                    (report.since, report.until),
                    counts,
                    &report.insights,
                    written,
                    started.elapsed(),
                )
            }
        }
    })
}

/// Insight runs that write hold the store's writer lock (one writer at a time).
fn lock_for_insights(
    st: &trail_store::Store,
    run: &trail_insight::RunOptions,
) -> Result<Option<trail_store::WriteGuard>> {
    if run.dry_run {
        return Ok(None);
    }
    Ok(Some(st.lock(true, |holder| {
        eprintln!("waiting for the store's writer lock (held by {holder})")
    })?))
}

fn print_insights(
    what: &str,
    a: &InsightRunArgs,
    range: (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>),
    counts: serde_json::Value,
    insights: &[trail_insight::Insight],
    written: Option<trail_insight::output::Written>,
    elapsed: std::time::Duration,
) -> Result<ExitCode> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
    if a.json {
        let records: Vec<serde_json::Value> = insights.iter().flat_map(|i| i.records()).collect();
        let v = serde_json::json!({
            "since": day(range.0), "until": day(range.1), "counts": counts,
            "insights": insights.len(),
            "written": written.as_ref().map(|w| w.new),
            "alreadyStored": written.as_ref().map(|w| w.existing),
            "seconds": elapsed.as_secs_f64(),
            "records": records,
        });
        writeln!(out, "{v}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(since), Some(until)) = range else {
        writeln!(
            out,
            "{what}: no days to judge (the store is empty, or already judged)"
        )?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(
        out,
        "{what}: judged {since} to {until} in {:.2}s: {} found{}",
        elapsed.as_secs_f64(),
        insights.len(),
        match &written {
            None => " (dry run: nothing written)".to_owned(),
            Some(w) if w.existing > 0 => {
                format!(", {} new, {} already stored", w.new, w.existing)
            }
            Some(w) => format!(", {} written to the insights table", w.new),
        }
    )?;
    if let Some(obj) = counts.as_object() {
        let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "  {}", parts.join(", "))?;
    }
    if !insights.is_empty() {
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<14}  {:<39}  {:<20}  {:>6}",
            "start", "end", "type", "region", "object", "identity", "events"
        )?;
    }
    for i in insights.iter().take(a.max_rows) {
        let who = i
            .identity
            .as_ref()
            .and_then(|id| id.user_name.clone().or(id.principal_id.clone()))
            .unwrap_or_else(|| i.account.clone());
        writeln!(
            out,
            "{:<20}  {:<20}  {:<19}  {:<14}  {:<39}  {:<20}  {:>6}",
            i.start.format("%Y-%m-%dT%H:%M:%SZ"),
            i.end.format("%Y-%m-%dT%H:%M:%SZ"),
            i.insight_type.as_str(),
            visible(i.region.as_deref().unwrap_or("")),
            visible(&i.object),
            visible(&who),
            i.insight_count
        )?;
    }
    if insights.len() > a.max_rows {
        writeln!(
            out,
            "... {} more (query the insights table)",
            insights.len() - a.max_rows
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn gen_events(args: GenArgs) -> Result<ExitCode> {
    let cfg = trail_gen::GenConfig {
        seed: args.seed,
        events: args.events,
        days: args.days,
        regions: args.regions,
        format: match args.format {
            GenFormat::Array => trail_gen::FileFormat::Array,
            GenFormat::Ndjson => trail_gen::FileFormat::Ndjson,
            GenFormat::Records => trail_gen::FileFormat::Records,
        },
        anomalies: args.anomalies,
        ..Default::default()
    };
    let stats = trail_gen::generate(&cfg, &args.out)?;
    if let Some(path) = &args.labels {
        let labels: Vec<serde_json::Value> = stats.labels.iter().map(|l| l.to_json()).collect();
        std::fs::write(path, serde_json::to_vec_pretty(&labels)?)
            .with_context(|| format!("writing labels to {}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"events": stats.events, "files": stats.files, "bytes_uncompressed": stats.bytes_uncompressed})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "generated {} events in {} files ({} uncompressed) under {}",
        stats.events,
        stats.files,
        human_bytes(stats.bytes_uncompressed),
        visible(&args.out.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}
