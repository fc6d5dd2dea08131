//! Every command-line argument of `trail`, in one place.
//!
//! Values are checked while parsing (memory sizes, times, `name=value` parameters, lookup
//! attributes, page tokens, CIDRs, bounded numbers), so a bad value is a usage error with exit
//! code 2 before anything runs. Options appear only on the commands they mean something to;
//! `--store`, `--memory-limit`, `--threads` and `--queries` may also be written before the
//! command (`trail --store S sql ...`), where they apply to it, or to the REPL without one.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use trail_query::auditlogs::{self, Value};
use trail_query::lookup::NextToken;

use crate::render::Format;

/// The store used when neither `--store` nor `TRAIL_STORE` names one.
pub const DEFAULT_STORE: &str = "trail-store";

#[derive(Parser)]
#[command(
    name = "trail",
    version,
    about = "SQL over your cloud audit events (ActionTrail, CloudTrail)",
    after_help = "With no command, trail opens the interactive SQL shell on the store.\n\
                  Exit codes: 0 success, 1 error, 2 usage error, 3 finished but quarantined bad records."
)]
pub struct Cli {
    /// The store: a directory, or a bucket (`s3://bucket/prefix`, `oss://bucket/prefix`)
    /// [default: ./trail-store].
    #[arg(long, env = "TRAIL_STORE", value_name = "DIR|URL")]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub library: LibraryArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How queries run.
#[derive(Args, Clone, Default)]
pub struct EngineArgs {
    /// Memory limit for queries (e.g. 512M, 4G); sorts, aggregates and joins spill to disk
    /// beyond it. Default: no limit.
    #[arg(long, env = "TRAIL_MEMORY_LIMIT", value_name = "SIZE", value_parser = memory_size)]
    pub memory_limit: Option<usize>,
    /// Worker threads for queries (default: one per core).
    #[arg(long = "threads", env = "TRAIL_QUERY_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub query_threads: Option<u16>,
    /// An IP-to-ASN database: a MaxMind DB (GeoLite2-ASN .mmdb) or a CSV of
    /// range_start,range_end,asn,organization (plain or gzip); repeat it for tables split by
    /// address family (TRAIL_ASN_DB: paths separated by `:`). Enables ip_asn() and ip_org()
    /// and judges new source addresses by provider in `trail insight ip`.
    #[arg(long, env = "TRAIL_ASN_DB", value_name = "FILE", value_delimiter = ':')]
    pub asn_db: Vec<PathBuf>,
    /// An IP-to-country database (GeoLite2-City or -Country .mmdb). Enables ip_country().
    #[arg(long, env = "TRAIL_GEO_DB", value_name = "FILE")]
    pub geo_db: Option<PathBuf>,
    /// Run queries on a cluster: the address of its scheduler (`df://HOST:PORT`; see `trail
    /// cluster`). The store must be one every machine of the cluster reaches (a bucket, or a
    /// shared path).
    #[arg(long, env = "TRAIL_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

/// Where saved queries come from.
#[derive(Args, Clone, Default)]
pub struct LibraryArgs {
    /// A directory of your own saved queries (`*.sql`), added to the built-in library.
    #[arg(long = "queries", env = "TRAIL_QUERIES", value_name = "DIR")]
    pub queries_dir: Option<PathBuf>,
}

/// `--store` on a command (overrides one written before the command).
#[derive(Args, Clone, Default)]
pub struct StoreArg {
    /// The store: a directory or a bucket URL [default: $TRAIL_STORE, else ./trail-store].
    #[arg(long, value_name = "DIR|URL")]
    pub store: Option<PathBuf>,
}

/// Query options on a command (override those written before the command).
#[derive(Args, Clone, Default)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Memory limit for queries (e.g. 512M, 4G); sorts, aggregates and joins spill to disk
    /// beyond it [default: $TRAIL_MEMORY_LIMIT, else none].
    #[arg(long, value_name = "SIZE", value_parser = memory_size)]
    pub memory_limit: Option<usize>,
    /// Worker threads for queries [default: $TRAIL_QUERY_THREADS, else one per core].
    #[arg(long = "threads", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub query_threads: Option<u16>,
    /// An IP-to-ASN database (GeoLite2-ASN .mmdb, or a CSV of range_start,range_end,asn,
    /// organization), repeatable: ip_asn(), ip_org(), provider-aware IpInsight
    /// [default: $TRAIL_ASN_DB].
    #[arg(long, value_name = "FILE")]
    pub asn_db: Vec<PathBuf>,
    /// An IP-to-country database (GeoLite2-City or -Country .mmdb): ip_country()
    /// [default: $TRAIL_GEO_DB].
    #[arg(long, value_name = "FILE")]
    pub geo_db: Option<PathBuf>,
    /// Run the queries on a cluster: its scheduler's address (`df://HOST:PORT`)
    /// [default: $TRAIL_CLUSTER, else on this machine].
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

/// Saved-query directory on a command.
#[derive(Args, Clone, Default)]
pub struct QueriesArg {
    /// A directory of your own saved queries (`*.sql`) [default: $TRAIL_QUERIES].
    #[arg(long = "queries", value_name = "DIR")]
    pub queries_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Ingest event files (JSON, NDJSON, gzip; files, directories, `-` for stdin).
    Ingest(IngestArgs),
    /// Merge small files of each partition (also done automatically after ingest).
    Compact(CompactArgs),
    /// Show what the store holds: partitions, files, events, time range.
    Info(InfoArgs),
    /// Remove what no commit references any more from a store in a bucket: files replaced by
    /// compaction, and uploads of writers that crashed or lost a commit race, once they are
    /// older than the grace period (readers may still be reading them).
    Vacuum(VacuumArgs),
    /// Run SQL against the store.
    Sql(SqlArgs),
    /// The interactive SQL shell (also what `trail` alone opens).
    Repl(ReplArgs),
    /// List the saved analyses, or show one (its parameters and SQL).
    Queries(QueriesArgs),
    /// Run a saved analysis.
    Run(RunArgs),
    /// Look events up by attribute, like the LookupEvents API, on the local store.
    Lookup(LookupArgs),
    /// Query data-audit logs like the DescribeAuditLogs API, on the local store.
    AuditLogs(Box<AuditLogsArgs>),
    /// Trails: which events go where (CreateTrail, DescribeTrails, UpdateTrail, DeleteTrail,
    /// StartLogging, StopLogging, GetTrailStatus on the local store).
    #[command(subcommand)]
    Trails(TrailsCommand),
    /// Deliver what started trails select, in the vendor's layout, since their last delivery
    /// (also done after every ingest while a trail is started).
    Deliver(DeliverArgs),
    /// Find insight events: unusual source IPs per identity, unusual API call and error rates.
    #[command(subcommand)]
    Insight(InsightCommand),
    /// Sigma rules: check which compile (and why the others do not), or run them.
    #[command(subcommand)]
    Sigma(SigmaCommand),
    /// Run every enabled detection (saved analyses marked as detections, Sigma rules) over what
    /// arrived since the last run, and keep the findings (the `findings` table).
    Detect(DetectArgs),
    /// Generate realistic ActionTrail events (a delivery tree) for tests and benchmarks.
    Gen(GenArgs),
    /// Run a cluster's scheduler or an executor (Apache DataFusion Ballista), for queries
    /// with `--cluster` over a store every machine reaches.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (`trail.1`, `trail-ingest.1`, ...) into a directory.
    Man {
        /// Where to write them.
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
}

impl Command {
    /// The store options the command takes (`None`: it uses no store).
    pub fn store_arg(&self) -> Option<&StoreArg> {
        match self {
            Command::Ingest(a) => Some(&a.store),
            Command::Compact(a) => Some(&a.store),
            Command::Info(a) => Some(&a.store),
            Command::Vacuum(a) => Some(&a.store),
            Command::Sql(a) => Some(&a.query.store),
            Command::Repl(a) => Some(&a.query.store),
            Command::Run(a) => Some(&a.query.store),
            Command::Lookup(a) => Some(&a.query.store),
            Command::AuditLogs(a) => Some(&a.query.store),
            Command::Insight(c) => Some(&c.query().store),
            Command::Trails(c) => Some(&c.common().store),
            Command::Deliver(a) => Some(&a.query.store),
            Command::Sigma(SigmaCommand::Run(a)) => Some(&a.query.store),
            Command::Detect(a) => Some(&a.query.store),
            Command::Queries(_)
            | Command::Gen(_)
            | Command::Cluster(_)
            | Command::Sigma(SigmaCommand::Check(_))
            | Command::Completions { .. }
            | Command::Man { .. } => None,
        }
    }

    /// The query options the command takes.
    pub fn query_args(&self) -> Option<&QueryArgs> {
        match self {
            Command::Sql(a) => Some(&a.query),
            Command::Repl(a) => Some(&a.query),
            Command::Run(a) => Some(&a.query),
            Command::Lookup(a) => Some(&a.query),
            Command::AuditLogs(a) => Some(&a.query),
            Command::Deliver(a) => Some(&a.query),
            Command::Insight(c) => Some(c.query()),
            Command::Sigma(SigmaCommand::Run(a)) => Some(&a.query),
            Command::Detect(a) => Some(&a.query),
            _ => None,
        }
    }

    /// The saved-query directory option the command takes.
    pub fn queries_arg(&self) -> Option<&QueriesArg> {
        match self {
            Command::Repl(a) => Some(&a.queries),
            Command::Queries(a) => Some(&a.queries),
            Command::Run(a) => Some(&a.queries),
            Command::Detect(a) => Some(&a.queries),
            _ => None,
        }
    }

    /// The command's name as typed (`insight ip`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ingest(_) => "ingest",
            Command::Compact(_) => "compact",
            Command::Info(_) => "info",
            Command::Vacuum(_) => "vacuum",
            Command::Sql(_) => "sql",
            Command::Repl(_) => "repl",
            Command::Queries(_) => "queries",
            Command::Run(_) => "run",
            Command::Lookup(_) => "lookup",
            Command::AuditLogs(_) => "audit-logs",
            Command::Trails(c) => c.name(),
            Command::Deliver(_) => "deliver",
            Command::Insight(InsightCommand::Ip(_)) => "insight ip",
            Command::Insight(InsightCommand::Rate(_)) => "insight rate",
            Command::Insight(InsightCommand::Export(_)) => "insight export",
            Command::Sigma(SigmaCommand::Check(_)) => "sigma check",
            Command::Sigma(SigmaCommand::Run(_)) => "sigma run",
            Command::Detect(_) => "detect",
            Command::Gen(_) => "gen",
            Command::Cluster(ClusterCommand::Scheduler(_)) => "cluster scheduler",
            Command::Cluster(ClusterCommand::Executor(_)) => "cluster executor",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

#[derive(Subcommand)]
pub enum SigmaCommand {
    /// Parse and compile rules; list those that cannot be used, with the reason.
    Check(SigmaCheckArgs),
    /// Run rules over the store; print every matching event with the rule that matched.
    Run(SigmaRunArgs),
}

#[derive(Args)]
pub struct SigmaCheckArgs {
    /// Rule files or directories (searched for *.yml and *.yaml).
    #[arg(required = true, value_name = "RULES")]
    pub rules: Vec<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SigmaRunArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Rule files or directories (searched for *.yml and *.yaml).
    #[arg(required = true, value_name = "RULES")]
    pub rules: Vec<PathBuf>,
    /// Events at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = user_time)]
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    #[arg(long, value_parser = user_time)]
    pub until: Option<DateTime<Utc>>,
    /// Print matches as NDJSON (rule id, title, level, tags, and the event as stored).
    #[arg(long)]
    pub json: bool,
    /// Most matches listed in the table (all are counted).
    #[arg(long, default_value_t = 100)]
    pub max_rows: usize,
}

#[derive(Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub queries: QueriesArg,
    /// Sigma rule files or directories to run (repeatable; TRAIL_RULES: paths separated by `:`).
    #[arg(long, env = "TRAIL_RULES", value_name = "PATH", value_delimiter = ':')]
    pub rules: Vec<PathBuf>,
    /// Replay from this time (RFC 3339 or YYYY-MM-DD, UTC) instead of continuing from the
    /// last run; findings already stored are not stored again.
    #[arg(long, value_parser = user_time)]
    pub since: Option<DateTime<Utc>>,
    /// Report findings without storing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
    /// Print the report as JSON (findings as records).
    #[arg(long)]
    pub json: bool,
    /// Most findings listed (all are stored).
    #[arg(long, default_value_t = 40)]
    pub max_rows: usize,
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub queries: QueriesArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Args)]
pub struct QueriesArgs {
    #[command(flatten)]
    pub queries: QueriesArg,
    /// Show this query in full.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum InsightCommand {
    /// IpInsight: operations of an identity from a source IP unusual for it.
    Ip(IpArgs),
    /// ApiCallRateInsight and ApiErrorRateInsight: write-call and error rates per minute far
    /// above their baseline, per account, region and event name.
    Rate(RateArgs),
    /// Write every stored insight as NDJSON under DIR in the
    /// `Actiontrail-Insight/<region>/<YYYY>/<MM>/<DD>/` layout.
    Export(ExportArgs),
}

impl InsightCommand {
    fn query(&self) -> &QueryArgs {
        match self {
            InsightCommand::Ip(a) => &a.run.query,
            InsightCommand::Rate(a) => &a.run.query,
            InsightCommand::Export(a) => &a.query,
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Where to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// First day exported (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// Last day exported (YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<NaiveDate>,
}

#[derive(Args)]
pub struct InsightRunArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// First day to judge (YYYY-MM-DD). Default: the last day judged before (again, since it
    /// may have grown), or the store's first day.
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// Last day to judge. Default: the store's last day.
    #[arg(long)]
    pub until: Option<NaiveDate>,
    /// Replay history day by day from --since (default: the store's first day), as if the job
    /// had run every day; findings already stored are not written twice.
    #[arg(long)]
    pub backtest: bool,
    /// Report findings without writing them to the store.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
    /// Print the report as JSON (findings as insight records).
    #[arg(long)]
    pub json: bool,
    /// Most findings listed (all are written).
    #[arg(long, default_value_t = 40)]
    pub max_rows: usize,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum IpTableArg {
    Events,
    #[value(name = "audit_logs")]
    AuditLogs,
}

#[derive(Args)]
pub struct IpArgs {
    #[command(flatten)]
    pub run: InsightRunArgs,
    /// What to judge: `events` (identities' source IPs) or `audit_logs` (database users' client
    /// IPs per instance); same rules, baseline and insight records.
    #[arg(long, value_enum, default_value = "events")]
    pub table: IpTableArg,
    /// Days of history an identity's usual IPs are learned from.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub baseline_days: u32,
    /// Active days an identity needs in the baseline to be judged on its own (else its
    /// account's baseline is used).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=366))]
    pub min_history_days: u32,
    /// Events an identity needs in the baseline to be judged on its own.
    #[arg(long, default_value_t = 20)]
    pub min_history_events: u64,
    /// An IPv4 address in the same /N network as a usual IP is near, not unusual (32: off).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub near_v4: u8,
    /// An IPv6 address in the same /N network as a usual IP is near, not unusual (128: off).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub near_v6: u8,
    /// Unusual operations less than this many minutes apart form one insight (at most a week).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=10_080))]
    pub gap_minutes: i64,
    /// IPs or CIDRs never reported, comma-separated (may be repeated).
    #[arg(long, value_delimiter = ',', value_parser = cidr, value_name = "CIDR")]
    pub whitelist: Vec<IpNet>,
    /// A file of IPs or CIDRs never reported, one per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    pub whitelist_file: Vec<PathBuf>,
    /// With --asn-db: a provider seen on at least this many days of the baseline makes its
    /// other addresses usual for the identity.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub min_provider_days: u32,
}

#[derive(Args)]
pub struct RateArgs {
    #[command(flatten)]
    pub run: InsightRunArgs,
    /// Days before a minute's day its baseline mean is learned from.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub baseline_days: u32,
    /// Days before a minute's day its baseline deviation is learned from.
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub learn_days: u32,
    /// Days of store history needed before a day is judged.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=366))]
    pub min_history_days: u32,
    /// A minute is unusual above mean + this many standard deviations...
    #[arg(long, default_value_t = 6.0, value_parser = sigmas)]
    pub sigmas: f64,
    /// ...and with at least this many calls.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub min_per_minute: u64,
    /// Unusual minutes at most this many minutes apart form one insight (at most a day).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=1_440))]
    pub gap_minutes: i64,
}

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Files, directories, or buckets (`s3://bucket/prefix`, `oss://bucket/prefix`) to ingest;
    /// `-` reads standard input. What an earlier ingest read and has not changed since is not
    /// read again (the store keeps a ledger of each source).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// List every day of a bucket source, not only those from the last day listed on.
    #[arg(long)]
    pub full: bool,
    /// Read every input again, even those the ledger shows unchanged (dedup keeps each event
    /// once).
    #[arg(long)]
    pub reread: bool,
    /// An S3-compatible endpoint for bucket sources and a store in a bucket (`http://127.0.0.1:9000`, or an OSS
    /// endpoint such as `https://oss-cn-hangzhou.aliyuncs.com`). Default: AWS for `s3://`,
    /// `OSS_ENDPOINT` for `oss://`.
    #[arg(long, env = "TRAIL_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The region requests are signed for (default: `AWS_REGION`, the profile's, or the OSS
    /// endpoint's).
    #[arg(long)]
    pub region: Option<String>,
    /// How requests name the bucket: `virtual` (`bucket.host`; the default for AWS and OSS) or
    /// `path` (`host/bucket`; the default with --endpoint).
    #[arg(long, value_enum)]
    pub addressing: Option<Addressing>,
    /// GET requests in flight when reading a bucket.
    #[arg(long, env = "TRAIL_FETCH_CONCURRENCY", default_value_t = 128,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub fetch_concurrency: u16,
    /// Days before the last listed day that the next run of a bucket lists again, for late
    /// deliveries.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=3660))]
    pub lookback_days: u32,
    /// Print the summary as JSON.
    #[arg(long, env = "TRAIL_JSON")]
    pub json: bool,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
    /// Decoder threads (0: one per core). A file reader thread, the writer (which dedups and
    /// sorts) and as many encoder threads as decoders run beside them: 2N + 2 threads. The
    /// compaction after the ingest merges partitions on N threads.
    #[arg(long, env = "TRAIL_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: u16,
    /// MiB of decoded events buffered before a partition is written out.
    #[arg(long, env = "TRAIL_MEMORY_BUDGET_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub memory_budget_mb: u32,
    /// Records larger than this many bytes are quarantined.
    #[arg(long, env = "TRAIL_MAX_RECORD_BYTES", default_value_t = 16 << 20,
          value_parser = clap::value_parser!(u32).range(1_024..=1 << 30))]
    pub max_record_bytes: u32,
    /// When a record has no eventTime, use Logstash's `@timestamp` instead of quarantining it.
    #[arg(long, env = "TRAIL_EVENT_TIME_FALLBACK")]
    pub event_time_fallback: bool,
    /// Do not compact the partitions this ingest touched.
    #[arg(long, env = "TRAIL_NO_COMPACT")]
    pub no_compact: bool,
    /// Show no progress bar even on a terminal.
    #[arg(long, short)]
    pub quiet: bool,
}

/// How bucket requests are addressed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Addressing {
    Path,
    Virtual,
}

#[derive(Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Compact a partition once it has at least this many small files.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
    pub min_files: u32,
    /// Partitions merged side by side (0: one per core), as long as they read at most 32
    /// files in all; a larger merge runs alone.
    #[arg(long, env = "TRAIL_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: u16,
    /// Fail at once if another trail process is writing the store.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VacuumArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Keep what a commit within this many minutes still referenced, and anything younger.
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub grace_minutes: u64,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show at most this many rows of a result (default: all).
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// Print how long each statement took.
    #[arg(long)]
    pub timing: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["command", "file"])))]
pub struct SqlArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The SQL to run.
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    /// A file of SQL to run (`-` reads standard input).
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub queries: QueriesArg,
    /// The saved query (`trail queries` lists them).
    pub name: String,
    /// A parameter, `name=value` (repeatable).
    #[arg(long = "param", short = 'p', value_parser = param, value_name = "NAME=VALUE")]
    pub params: Vec<(String, String)>,
    /// Print the SQL that would run instead of running it.
    #[arg(long)]
    pub print_sql: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LookupDirection {
    Forward,
    Backward,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LookupOutput {
    Json,
    Table,
}

#[derive(Args)]
pub struct LookupArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// `Key=Value`; keys: ServiceName, EventName, User, EventId, ResourceType, ResourceName,
    /// EventRW, EventAccessKeyId, SourceIpAddress, EventType, RoleName. Repeatable: different
    /// keys must all match, values of one key any.
    #[arg(long = "attr", short = 'a', value_parser = attribute, value_name = "KEY=VALUE")]
    pub attrs: Vec<(String, String)>,
    /// Events at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = user_time)]
    pub start: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = user_time)]
    pub end: Option<DateTime<Utc>>,
    /// Events per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_results: u32,
    /// The token printed by the previous page.
    #[arg(long, value_parser = next_token)]
    pub next_token: Option<NextToken>,
    /// `backward`: newest first (the vendor's order); `forward`: oldest first.
    #[arg(long, value_enum, default_value = "backward")]
    pub direction: LookupDirection,
    /// `json`: the original records with the next token; `table`: a summary line per event.
    #[arg(long, value_enum, default_value = "table")]
    pub output: LookupOutput,
}

#[derive(Args)]
pub struct DeliverArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Only this trail (it must be started).
    #[arg(long, value_name = "NAME")]
    pub trail: Option<String>,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
    /// Print what was delivered as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options every `trail trails` command takes.
#[derive(Args)]
pub struct TrailCommon {
    #[command(flatten)]
    pub store: StoreArg,
    /// `json`: the API's response (or error) shape; `table`: for people.
    #[arg(long, value_enum, default_value = "table")]
    pub output: LookupOutput,
    /// Fail at once if another trail process is writing the store, instead of waiting.
    #[arg(long, env = "TRAIL_NO_WAIT")]
    pub no_wait: bool,
}

/// A trail's settable fields (CreateTrail and UpdateTrail parameters).
#[derive(Args)]
pub struct TrailSpecArgs {
    /// The OSS bucket events are delivered to (3 to 63 characters: lowercase letters, digits,
    /// `-`; a letter or digit first). An empty value clears it (update).
    #[arg(long, value_name = "BUCKET")]
    pub oss_bucket: Option<String>,
    /// The key prefix in the bucket (6 to 32 characters: letters, digits, `-`, `/`, `_`; a
    /// letter first; may be empty).
    #[arg(long, value_name = "PREFIX")]
    pub oss_key_prefix: Option<String>,
    /// The role the delivery assumes to write the bucket.
    #[arg(long, value_name = "ARN")]
    pub oss_write_role_arn: Option<String>,
    /// A local directory that stands for the bucket: delivery writes there, in the bucket's
    /// layout.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// The Log Service project (`acs:log:<region>:<account>:project/<name>`).
    #[arg(long, value_name = "ARN")]
    pub sls_project_arn: Option<String>,
    /// The role the delivery assumes to write the project.
    #[arg(long, value_name = "ARN")]
    pub sls_write_role_arn: Option<String>,
    /// Which events: `Read`, `Write` (the default at creation) or `All`.
    #[arg(long = "event-rw", value_name = "Read|Write|All")]
    pub event_rw: Option<String>,
    /// `All` (the default at creation) or regions separated by commas.
    #[arg(long, value_name = "All|REGION,...")]
    pub trail_region: Option<String>,
    /// A multi-account trail: every member account of the resource directory.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub organization: Option<bool>,
    /// A single-account trail's account: only its events are delivered [default: every
    /// account the store holds].
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Deliver insight events too, under `Actiontrail-Insight/`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insights: Option<bool>,
}

impl TrailSpecArgs {
    pub fn spec(&self, home_region: Option<String>) -> trail_store::trails::TrailSpec {
        trail_store::trails::TrailSpec {
            oss_bucket_name: self.oss_bucket.clone(),
            oss_key_prefix: self.oss_key_prefix.clone(),
            oss_write_role_arn: self.oss_write_role_arn.clone(),
            sls_project_arn: self.sls_project_arn.clone(),
            sls_write_role_arn: self.sls_write_role_arn.clone(),
            local_directory: self.dir.clone(),
            event_rw: self.event_rw.clone(),
            trail_region: self.trail_region.clone(),
            is_organization_trail: self.organization,
            home_region,
            account_id: self.account.clone(),
            insight_enabled: self.insights,
        }
    }
}

#[derive(Args)]
pub struct TrailCreateArgs {
    #[command(flatten)]
    pub common: TrailCommon,
    /// The trail's name (6 to 36 characters: lowercase letters, digits, `-`, `_`; a lowercase
    /// letter first).
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub spec: TrailSpecArgs,
    /// The region the trail is created in (global events are delivered under it).
    #[arg(long, default_value = "cn-hangzhou")]
    pub home_region: String,
}

#[derive(Args)]
pub struct TrailUpdateArgs {
    #[command(flatten)]
    pub common: TrailCommon,
    /// The trail.
    pub name: String,
    #[command(flatten)]
    pub spec: TrailSpecArgs,
}

#[derive(Args)]
pub struct TrailNameArgs {
    #[command(flatten)]
    pub common: TrailCommon,
    /// The trail.
    pub name: String,
}

#[derive(Args)]
pub struct TrailListArgs {
    #[command(flatten)]
    pub common: TrailCommon,
}

#[derive(Subcommand)]
pub enum TrailsCommand {
    /// Create a trail (stopped; `start` starts it).
    Create(TrailCreateArgs),
    /// List the trails.
    List(TrailListArgs),
    /// Show one trail.
    Describe(TrailNameArgs),
    /// Change a trail: the options given change, an empty value clears an optional one.
    Update(TrailUpdateArgs),
    /// Delete a trail.
    Delete(TrailNameArgs),
    /// Start logging.
    Start(TrailNameArgs),
    /// Stop logging.
    Stop(TrailNameArgs),
    /// Whether the trail is logging, and its latest delivery.
    Status(TrailNameArgs),
}

impl TrailsCommand {
    pub fn common(&self) -> &TrailCommon {
        match self {
            TrailsCommand::Create(a) => &a.common,
            TrailsCommand::List(a) => &a.common,
            TrailsCommand::Update(a) => &a.common,
            TrailsCommand::Describe(a)
            | TrailsCommand::Delete(a)
            | TrailsCommand::Start(a)
            | TrailsCommand::Stop(a)
            | TrailsCommand::Status(a) => &a.common,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            TrailsCommand::Create(_) => "trails create",
            TrailsCommand::List(_) => "trails list",
            TrailsCommand::Describe(_) => "trails describe",
            TrailsCommand::Update(_) => "trails update",
            TrailsCommand::Delete(_) => "trails delete",
            TrailsCommand::Start(_) => "trails start",
            TrailsCommand::Stop(_) => "trails stop",
            TrailsCommand::Status(_) => "trails status",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AuditLang {
    #[value(name = "zh_cn")]
    ZhCn,
    #[value(name = "en_us")]
    EnUs,
}

/// `DescribeAuditLogs`' request parameters. Matching: `UserName`, `InstanceName`,
/// `DatabaseName`, `RuleId`, `RuleCategory`, `MemberAccount` exactly; `ProductCode`,
/// `OperateType`, `LogSource` exactly in any case; `ClientUa`, `SqlText`, `RuleName`,
/// `Message`, `OssObjectKey` as a substring in any case; all given conditions at once.
#[derive(Args)]
pub struct AuditLogsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The database user.
    #[arg(long, value_parser = audit("UserName"))]
    pub user_name: Option<Value>,
    /// The client address: an IP, a CIDR (10.0.0.0/8) or a masked address (10.*.*.94).
    #[arg(long, value_parser = audit("ClientIp"))]
    pub client_ip: Option<Value>,
    /// The client type (substring, any case: mysql).
    #[arg(long, value_parser = audit("ClientUa"))]
    pub client_ua: Option<Value>,
    /// The data asset instance.
    #[arg(long, value_parser = audit("InstanceName"))]
    pub instance_name: Option<Value>,
    /// The database.
    #[arg(long, value_parser = audit("DatabaseName"))]
    pub database_name: Option<Value>,
    /// Logs at or after this LogTime: UNIX milliseconds, or RFC 3339 / YYYY-MM-DD (UTC).
    #[arg(long, value_parser = audit("StartTime"))]
    pub start_time: Option<Value>,
    /// Logs at or before this LogTime: UNIX milliseconds, or RFC 3339 / YYYY-MM-DD (UTC).
    #[arg(long, value_parser = audit("EndTime"))]
    pub end_time: Option<Value>,
    /// The service of the data asset (MaxCompute, OSS, RDS, ...; any case).
    #[arg(long, value_parser = audit("ProductCode"))]
    pub product_code: Option<Value>,
    /// The service id: 1 MaxCompute, 2 OSS, 3 AnalyticDB for MySQL, 4 TableStore, 5 RDS,
    /// 6 SELF_DB, 7 PolarDB-X, 8 PolarDB, 9 AnalyticDB for PostgreSQL, 10 OceanBase,
    /// 11 MongoDB, 25 Redis.
    #[arg(long, value_parser = audit("ProductId"))]
    pub product_id: Option<Value>,
    /// Text inside the SQL statement (any case).
    #[arg(long, value_parser = audit("SqlText"))]
    pub sql_text: Option<Value>,
    /// Execution time in milliseconds, `in[LOW HIGH]` (inclusive).
    #[arg(long, value_parser = audit("ExecuteTimeRange"), value_name = "in[LOW HIGH]")]
    pub execute_time_range: Option<Value>,
    /// Affected rows, `in[LOW HIGH]` (inclusive).
    #[arg(long, value_parser = audit("EffectRowRange"), value_name = "in[LOW HIGH]")]
    pub effect_row_range: Option<Value>,
    /// The audit rule's id.
    #[arg(long, value_parser = audit("RuleId"))]
    pub rule_id: Option<Value>,
    /// Text inside the audit rule's name (any case).
    #[arg(long, value_parser = audit("RuleName"))]
    pub rule_name: Option<Value>,
    /// The operation type (Select, Insert, Drop, ...; any case).
    #[arg(long, value_parser = audit("OperateType"))]
    pub operate_type: Option<Value>,
    /// The risk level: 1/low, 2/medium, 3/high.
    #[arg(long, value_parser = audit("WarnLevel"))]
    pub warn_level: Option<Value>,
    /// The rule type.
    #[arg(long, value_parser = audit("RuleCategory"))]
    pub rule_category: Option<Value>,
    /// The data source (SLOW_SQL, ...; any case).
    #[arg(long, value_parser = audit("LogSource"))]
    pub log_source: Option<Value>,
    /// The member account's UID.
    #[arg(long, value_parser = audit("MemberAccount"))]
    pub member_account: Option<Value>,
    /// The network type: default (outside the cloud) or aliyun.
    #[arg(long, value_parser = audit("IpType"))]
    pub ip_type: Option<Value>,
    /// Text inside the raw log message (any case).
    #[arg(long, value_parser = audit("Message"))]
    pub message: Option<Value>,
    /// Text inside the OSS object key (any case).
    #[arg(long, value_parser = audit("OssObjectKey"))]
    pub oss_object_key: Option<Value>,
    /// Include or exclude conditions, as the API's LogQueryOpJson:
    /// '[{"queryKey": "effectRowRange", "isContain": false}]' lists what does not match it.
    #[arg(long, value_parser = query_ops, value_name = "JSON")]
    pub log_query_op_json: Option<QueryOps>,
    /// Items per page (1 to 50).
    #[arg(long, default_value_t = trail_query::auditlogs::DEFAULT_PAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(trail_query::auditlogs::MAX_PAGE_SIZE)))]
    pub page_size: u32,
    /// The page (from 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub current_page: u64,
    /// Read the store as of this generation (printed with every page), so that paging is
    /// not disturbed by ingests in between.
    #[arg(long)]
    pub generation: Option<u64>,
    /// The language of WarnLevelName (derived from WarnLevel); as delivered when not given.
    #[arg(long, value_enum)]
    pub lang: Option<AuditLang>,
    /// `json`: the API's response shape (CurrentPage, PageSize, TotalCount, Items); `table`:
    /// a summary line per log.
    #[arg(long, value_enum, default_value = "table")]
    pub output: LookupOutput,
}

impl AuditLogsArgs {
    /// The conditions given, with the parameter each belongs to.
    pub fn conditions(&self) -> Vec<(&'static auditlogs::Param, Value)> {
        let given = [
            ("UserName", &self.user_name),
            ("ClientIp", &self.client_ip),
            ("ClientUa", &self.client_ua),
            ("InstanceName", &self.instance_name),
            ("DatabaseName", &self.database_name),
            ("StartTime", &self.start_time),
            ("EndTime", &self.end_time),
            ("ProductCode", &self.product_code),
            ("ProductId", &self.product_id),
            ("SqlText", &self.sql_text),
            ("ExecuteTimeRange", &self.execute_time_range),
            ("EffectRowRange", &self.effect_row_range),
            ("RuleId", &self.rule_id),
            ("RuleName", &self.rule_name),
            ("OperateType", &self.operate_type),
            ("WarnLevel", &self.warn_level),
            ("RuleCategory", &self.rule_category),
            ("LogSource", &self.log_source),
            ("MemberAccount", &self.member_account),
            ("IpType", &self.ip_type),
            ("Message", &self.message),
            ("OssObjectKey", &self.oss_object_key),
        ];
        given
            .into_iter()
            .filter_map(|(name, v)| {
                let p = auditlogs::PARAMS.iter().find(|p| p.name == name)?;
                Some((p, v.clone()?))
            })
            .collect()
    }
}

/// `LogQueryOpJson`, parsed.
pub type QueryOps = Vec<(&'static auditlogs::Param, bool)>;

/// The value parser of a `DescribeAuditLogs` parameter.
fn audit(name: &'static str) -> impl Fn(&str) -> Result<Value, String> + Clone + Send + Sync {
    move |s: &str| {
        auditlogs::param(name)
            .and_then(|p| auditlogs::parse_value(p, s))
            .map_err(|e| e.to_string())
    }
}

fn query_ops(s: &str) -> Result<QueryOps, String> {
    auditlogs::parse_query_ops(s).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GenFormat {
    Array,
    Ndjson,
    Records,
}

#[derive(Args)]
pub struct GenArgs {
    /// Where to write the delivery tree.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Events to write (exactly).
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub events: u64,
    /// Seed of the random streams (the same seed writes the same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3_660))]
    pub days: u32,
    /// Regions used.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub regions: u16,
    /// How events are laid out in a file.
    #[arg(long, value_enum, default_value = "array")]
    pub format: GenFormat,
    /// Inject this many labelled anomalies of each kind (new IP, new network, write burst,
    /// error storm, and the nearby and whitelisted IPs that must raise nothing).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub anomalies: u32,
    /// Also write this many data-audit logs (DescribeAuditLogs pages, under DataAudit/) of
    /// the same accounts, users and addresses; --anomalies applies to them too.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=10_000_000_000))]
    pub audit_logs: u64,
    /// Write the labels of the injected anomalies to this file (JSON).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Generate the IP-churn world instead of the benchmark mix: identities whose source
    /// addresses churn as real users' do (office NAT, home ISP leases, mobile carrier NAT,
    /// hosted CI runners, cloud services, travel), with --anomalies stolen-key uses labelled.
    /// --events is not used; the world has --identities identities over --days days.
    #[arg(long)]
    pub world: bool,
    /// Identities of the IP-churn world.
    #[arg(long, default_value_t = 350, requires = "world",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub identities: u32,
    /// Accounts of the IP-churn world.
    #[arg(long, default_value_t = 12, requires = "world",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub accounts: u32,
    /// Write the IP-churn world's IP-to-ASN table here (`range_start,range_end,asn,organization`).
    #[arg(long, value_name = "FILE", requires = "world")]
    pub asn_csv: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

fn memory_size(s: &str) -> Result<usize, String> {
    trail_query::parse_memory_size(s).map_err(|e| e.to_string())
}

fn user_time(s: &str) -> Result<DateTime<Utc>, String> {
    trail_query::time::parse_user_time(s).map_err(|e| e.to_string())
}

fn param(s: &str) -> Result<(String, String), String> {
    trail_query::saved::parse_param(s).map_err(|e| e.to_string())
}

fn attribute(s: &str) -> Result<(String, String), String> {
    trail_query::lookup::parse_attribute(s).map_err(|e| e.to_string())
}

fn next_token(s: &str) -> Result<NextToken, String> {
    s.parse::<NextToken>().map_err(|e| e.to_string())
}

fn cidr(s: &str) -> Result<IpNet, String> {
    trail_query::ip::parse_net(s.trim()).ok_or_else(|| {
        format!(
            "`{}` is not an IP address or CIDR (e.g. 203.0.113.0/24)",
            s.escape_debug()
        )
    })
}

fn sigmas(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{}` is not a number of standard deviations from 0 to 1000",
            s.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}

/// `trail cluster ...`
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Run the scheduler: it plans the queries of `trail ... --cluster df://HOST:PORT` and hands
    /// their tasks to the executors.
    Scheduler(SchedulerArgs),
    /// Run an executor: it registers with the scheduler and runs the tasks it is given.
    Executor(ExecutorArgs),
}

/// IP databases of a cluster node (the client's are not shipped to the cluster).
#[derive(Args, Clone, Default)]
pub struct NodeArgs {
    /// An IP-to-ASN database for ip_asn() and ip_org(), repeatable [default: $TRAIL_ASN_DB].
    #[arg(long, env = "TRAIL_ASN_DB", value_name = "FILE", value_delimiter = ':')]
    pub asn_db: Vec<PathBuf>,
    /// An IP-to-country database for ip_country() [default: $TRAIL_GEO_DB].
    #[arg(long, env = "TRAIL_GEO_DB", value_name = "FILE")]
    pub geo_db: Option<PathBuf>,
}

#[derive(Args)]
pub struct SchedulerArgs {
    /// The address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:50050")]
    pub bind: std::net::SocketAddr,
    /// The host name executors and clients reach this machine by [default: the bind address].
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Args)]
pub struct ExecutorArgs {
    /// The scheduler to serve.
    #[arg(long, env = "TRAIL_CLUSTER", value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Tasks run at once [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub concurrent_tasks: usize,
    /// The interface to listen on.
    #[arg(long, value_name = "HOST", default_value = "0.0.0.0")]
    pub bind_host: String,
    /// The host name the scheduler and other executors reach this machine by [default: its
    /// host name].
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// The Arrow Flight port (results and shuffle data).
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    pub flight_port: u16,
    /// The gRPC port.
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    pub grpc_port: u16,
    /// Where shuffle files go [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Memory for query execution (e.g. 4G) [default: a share of the machine's memory].
    #[arg(long, value_name = "SIZE", value_parser = memory_size)]
    pub memory_limit: Option<usize>,
    #[command(flatten)]
    pub node: NodeArgs,
}
