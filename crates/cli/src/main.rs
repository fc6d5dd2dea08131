//! `trail`: an embedded analytical query engine for cloud audit events.
//!
//! The binary parses arguments, calls the library crates and prints. Exit codes: 0 success,
//! 1 error, 2 usage error, 3 the command succeeded but quarantined bad records.

mod display;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use display::{human_bytes, visible};

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
    #[command(subcommand)]
    command: Command,
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
    /// Generate realistic ActionTrail events (a delivery tree) for tests and benchmarks.
    Gen(GenArgs),
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
struct SqlArgs {
    /// The SQL to run.
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    command: Option<String>,
    /// A file of SQL to run.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
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
    match cli.command {
        Command::Ingest(args) => ingest(&cli.store, args),
        Command::Compact(args) => compact(&cli.store, args),
        Command::Info { json } => info(&cli.store, json),
        Command::Sql(args) => sql(&cli.store, args),
        Command::Gen(args) => gen_events(args),
    }
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

fn sql(store: &std::path::Path, args: SqlArgs) -> Result<ExitCode> {
    let text = match (args.command, args.file) {
        (Some(c), _) => c,
        (None, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => anyhow::bail!("give the SQL with -c \"SELECT ...\" or -f FILE"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ctx = trail_query::open(store).await?;
        let mut out = std::io::stdout().lock();
        for statement in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let df = ctx.sql(statement).await?;
            let batches = df.collect().await?;
            let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
            writeln!(out, "{}", display::visible_table(&table.to_string()))?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
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
        ..Default::default()
    };
    let stats = trail_gen::generate(&cfg, &args.out)?;
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
