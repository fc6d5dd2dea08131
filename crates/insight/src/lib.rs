//! `trail-insight`: insight detection jobs over a trail store.
//!
//! * [`ip`]: **IpInsight**, operations of an identity from a source IP that is not among the
//!   IPs learned from its history, not whitelisted and not near a usual IP;
//! * [`rate`]: **ApiCallRateInsight** and **ApiErrorRateInsight**, minutes in which one event
//!   name's write calls or errors in one region and account rise far above their baseline.
//!
//! Every job judges history day by day: the findings for a day use only the events before it,
//! so a full run, an incremental run over new days and a `backtest` replay agree. Findings are
//! start/end pairs of insight events in ActionTrail's documented shape ([`Insight::records`]),
//! written as Parquet under the store's `insights/` directory (the `insights` SQL table) and
//! exportable as NDJSON in the `Actiontrail-Insight/<region>/<YYYY>/<MM>/<DD>/` layout.
//! Runs are deterministic: ids are hashes of what was found, files are named after their
//! content, and the same store and flags give the same bytes.

pub mod ip;
pub mod output;
pub mod rate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use trail_store::Store;

pub use output::{export_ndjson, write_insights};
pub use trail_query;

/// Errors of the insight jobs.
#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    #[error(transparent)]
    Query(#[from] trail_query::QueryError),
    #[error(transparent)]
    Store(#[from] trail_store::StoreError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("writing an insight file")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A flag or file given by the user is wrong.
    #[error("{0}")]
    Usage(String),
    /// Something this crate relies on did not hold (a bug, not the user's doing).
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

/// A `Result` with [`InsightError`].
pub type Result<T, E = InsightError> = std::result::Result<T, E>;

/// The insight types this crate raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InsightType {
    IpInsight,
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

impl InsightType {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::IpInsight => "IpInsight",
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
    }
}

/// Which days a run judges.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// First day judged (default: the day after the last run, or the store's first day).
    pub since: Option<NaiveDate>,
    /// Last day judged (default: the store's last day).
    pub until: Option<NaiveDate>,
    /// Replay `since..=until` day by day regardless of earlier runs.
    pub backtest: bool,
    /// Find and report, but write nothing to the store.
    pub dry_run: bool,
}

/// One value of an attribution with its average events per minute in the insight window
/// and, where the job learns one, in the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub value: String,
    pub average: f64,
    pub baseline_average: Option<f64>,
}

/// The identity an insight is about (IpInsight).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityInfo {
    pub kind: Option<String>,
    pub principal_id: Option<String>,
    pub account_id: Option<String>,
    pub user_name: Option<String>,
    pub access_key_id: Option<String>,
}

/// One finding: a start/end pair of insight events.
#[derive(Debug, Clone, PartialEq)]
pub struct Insight {
    pub insight_type: InsightType,
    /// The account the insight belongs to (`recipientAccountId`).
    pub account: String,
    pub region: Option<String>,
    /// What is unusual: the source IP (IpInsight) or the event name (rate insights).
    pub object: String,
    /// First and last minute (or event) of the unusual activity.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub identity: Option<IdentityInfo>,
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    /// (attribute, values), attributes in output order.
    pub attributions: Vec<(&'static str, Vec<Attribution>)>,
    /// Average events per minute in the window.
    pub insight_average: f64,
    pub insight_minutes: i64,
    /// Average events per minute in the baseline.
    pub baseline_average: f64,
    pub baseline_minutes: i64,
    pub insight_count: u64,
    /// Job-specific context (documented per job).
    pub context: serde_json::Map<String, Value>,
    /// `eventId`s of the operations the insight covers (at most [`MAX_COVERED`]).
    pub covered: Vec<String>,
}

/// Most covered event ids listed in one insight.
pub const MAX_COVERED: usize = 10_000;

/// A UUID-shaped id from a hash of `key` (ids are reproducible, never random).
pub fn stable_id(key: &str) -> String {
    trail_store::uuid_shaped(xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

fn round4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Insight {
    /// Who the insight is about, for a summary line: the user name, else the principal id,
    /// else the account.
    pub fn who(&self) -> String {
        self.identity
            .as_ref()
            .and_then(|id| id.user_name.clone().or(id.principal_id.clone()))
            .unwrap_or_else(|| self.account.clone())
    }

    /// The id shared by the start and end records.
    pub fn shared_event_id(&self) -> String {
        stable_id(&format!(
            "{}|{}|{}|{}|{}|{}",
            self.insight_type.as_str(),
            self.account,
            self.region.as_deref().unwrap_or(""),
            self.identity
                .as_ref()
                .and_then(|i| i.principal_id.as_deref())
                .unwrap_or(""),
            self.object,
            self.start.timestamp_micros()
        ))
    }

    fn details(&self, state: &str) -> Value {
        let mut attributions = serde_json::Map::new();
        for (name, values) in &self.attributions {
            let list: Vec<Value> = values
                .iter()
                .map(|a| {
                    let mut v = json!({"value": a.value, "average": round4(a.average)});
                    if let Some(b) = a.baseline_average {
                        v["baselineAverage"] = json!(round4(b));
                    }
                    v
                })
                .collect();
            attributions.insert((*name).to_owned(), Value::Array(list));
        }
        let mut context = json!({
            "attributions": attributions,
            "statistics": {
                "insight": round4(self.insight_average),
                "insightDuration": self.insight_minutes,
                "baseline": round4(self.baseline_average),
                "baselineDuration": self.baseline_minutes,
                "insightCount": self.insight_count,
            },
        });
        for (k, v) in &self.context {
            context[k] = v.clone();
        }
        json!({
            "state": state,
            "insightType": self.insight_type.as_str(),
            "insightObject": self.object,
            "insightContext": context,
            "coveredEventIds": self.covered,
        })
    }

    /// The start and end records, in ActionTrail's insight event shape.
    pub fn records(&self) -> [Value; 2] {
        let shared = self.shared_event_id();
        let one = |state: &str, time: DateTime<Utc>| {
            let mut r = json!({
                "eventVersion": "1",
                "eventId": stable_id(&format!("{shared}|{state}")),
                "eventType": "ActionTrailInsight",
                "eventCategory": "Insight",
                "eventSource": "actiontrail.aliyuncs.com",
                "eventTime": time_text(time),
                "acsRegion": self.region,
                "recipientAccountId": self.account,
                "sharedEventId": shared,
                "insightDetails": self.details(state),
            });
            if let Some(name) = &self.event_name {
                r["eventName"] = json!(name);
            }
            if let Some(ip) = &self.source_ip {
                r["sourceIpAddress"] = json!(ip);
            }
            if let Some(id) = &self.identity {
                r["userIdentity"] = json!({
                    "type": id.kind,
                    "principalId": id.principal_id,
                    "accountId": id.account_id,
                    "userName": id.user_name,
                    "accessKeyId": id.access_key_id,
                });
            }
            r
        };
        [one("Start", self.start), one("End", self.end)]
    }
}

/// Top `n` values by count (ties by value), with averages per minute over `minutes`.
fn top_values(
    counts: &HashMap<String, u64>,
    baseline: Option<(&HashMap<String, u64>, f64)>,
    minutes: f64,
    n: usize,
) -> Vec<Attribution> {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .take(n)
        .map(|(value, c)| Attribution {
            value: value.clone(),
            average: *c as f64 / minutes.max(1.0),
            baseline_average: baseline
                .map(|(b, bm)| b.get(value).copied().unwrap_or(0) as f64 / bm.max(1.0)),
        })
        .collect()
}

/// The days with events in the store (first, last), from the manifest.
pub fn data_days(store: &Store) -> Result<Option<(NaiveDate, NaiveDate)>> {
    Ok(store.snapshot()?.date_range())
}

/// A detection job that judges a store's history day by day (see the crate documentation).
pub trait Job {
    /// The job's name in the store's job state (`ip`, `rate`).
    fn name(&self) -> &'static str;
    /// What the job raises, for reports.
    fn title(&self) -> &'static str;
    /// Judge the days `run` selects and find insights; writes nothing.
    fn find(
        &self,
        engine: &trail_query::Engine,
        store: &Store,
        run: &RunOptions,
    ) -> impl std::future::Future<Output = Result<Findings>>;
}

/// What a job judged and found.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The days judged (`None`: nothing to judge).
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// Named counts in the job's order (events judged, how they were judged, ...).
    pub counts: Vec<(&'static str, u64)>,
    pub insights: Vec<Insight>,
    /// What the user should know about how the job judged (e.g. a database that would help).
    pub notes: Vec<String>,
}

impl Findings {
    /// One named count (0 when the job does not keep it).
    pub fn count(&self, name: &str) -> u64 {
        self.counts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }
}

/// A finished run: what was found, what was stored, how long it took.
#[derive(Debug, Clone)]
pub struct Report {
    pub job: &'static str,
    pub title: &'static str,
    pub findings: Findings,
    /// `None` for a dry run.
    pub written: Option<output::Written>,
    pub seconds: f64,
}

impl Report {
    /// The report as JSON: the days, counts, how many insights were found and stored, and the
    /// insight records themselves.
    pub fn to_json(&self) -> Value {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        let counts: serde_json::Map<String, Value> = self
            .findings
            .counts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let records: Vec<Value> = self
            .findings
            .insights
            .iter()
            .flat_map(|i| i.records())
            .collect();
        json!({
            "job": self.job,
            "since": day(self.findings.since),
            "until": day(self.findings.until),
            "counts": counts,
            "insights": self.findings.insights.len(),
            "written": self.written.as_ref().map(|w| w.new),
            "alreadyStored": self.written.as_ref().map(|w| w.existing),
            "seconds": self.seconds,
            "notes": self.findings.notes,
            "records": records,
        })
    }
}

/// Run a job as `trail insight` does: take the store's writer lock unless it is a dry run
/// (waiting for another writer when `wait`, calling `on_wait` with the holder first), find,
/// store the findings and advance the job's judged-through day.
pub async fn run_job<J: Job>(
    engine: &trail_query::Engine,
    store: &Store,
    job: &J,
    run: &RunOptions,
    wait: bool,
    on_wait: impl FnOnce(&str),
) -> Result<Report> {
    let _guard = if run.dry_run {
        None
    } else {
        Some(store.lock(wait, on_wait)?)
    };
    let started = Instant::now();
    let findings = job.find(engine, store, run).await?;
    let written = persist_run(
        engine,
        store,
        run,
        &findings.insights,
        findings.until,
        job.name(),
    )
    .await?;
    Ok(Report {
        job: job.name(),
        title: job.title(),
        findings,
        written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where a job keeps the last day it judged (relative to the store).
fn state_path(job: &str) -> String {
    format!("{}/insight-{job}.json", trail_store::manifest::META_DIR)
}

/// The last day a job judged, if it ran before.
pub fn last_judged(store: &Store, job: &str) -> Result<Option<NaiveDate>> {
    let rel = state_path(job);
    let Some(bytes) = store.read_aux(&rel)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        InsightError::Usage(format!(
            "{}: not a job state ({e}); delete it to judge the whole history again",
            store.display_path(&rel)
        ))
    })?;
    Ok(v["through"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()))
}

/// Record that `job` judged the days through `through` (call after its findings are written).
pub fn mark_judged(store: &Store, job: &str, through: NaiveDate) -> Result<()> {
    let body = json!({"through": through.format("%Y-%m-%d").to_string()});
    store.write_aux(&state_path(job), body.to_string().as_bytes())?;
    Ok(())
}

/// Store a run's findings and advance the job's judged-through day (never backwards: a
/// backtest of an old range leaves a later mark as it is). A dry run stores nothing and gives
/// `None`. The caller holds the store's writer lock.
pub async fn persist_run(
    engine: &trail_query::Engine,
    store: &Store,
    run: &RunOptions,
    insights: &[Insight],
    until: Option<NaiveDate>,
    job: &str,
) -> Result<Option<output::Written>> {
    if run.dry_run {
        return Ok(None);
    }
    let written = write_insights(engine, store, insights).await?;
    if let Some(until) = until
        && last_judged(store, job)?.is_none_or(|before| before < until)
    {
        mark_judged(store, job, until)?;
    }
    Ok(Some(written))
}

/// The days a run judges: an explicit range, or from the last judged day (judged again, since
/// it may have grown) to the store's last day, or the whole store on a first run.
pub fn judged_range(
    store: &Store,
    job: &str,
    run: &RunOptions,
) -> Result<Option<(NaiveDate, NaiveDate)>> {
    judged_range_in(data_days(store)?, store, job, run)
}

/// [`judged_range`] for a table whose first and last days are `days`.
pub fn judged_range_in(
    days: Option<(NaiveDate, NaiveDate)>,
    store: &Store,
    job: &str,
    run: &RunOptions,
) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let Some((first, last)) = days else {
        return Ok(None);
    };
    let since = match (run.since, run.backtest) {
        (Some(s), _) => s,
        (None, true) => first,
        (None, false) => last_judged(store, job)?.unwrap_or(first),
    };
    let until = run.until.unwrap_or(last);
    if since > until {
        return Ok(None);
    }
    Ok(Some((since, until)))
}

/// Days since the epoch.
pub fn day_number(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// The date of a day number.
pub fn day_date(n: i32) -> NaiveDate {
    NaiveDate::default() + Duration::days(i64::from(n))
}

fn sql_date(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

/// A column as text values (any string type; NULL as `None`).
fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let col = column(batch, name)?;
    let col = arrow::compute::cast(&col, &DataType::Utf8)?;
    let a = col.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
        .collect())
}

fn int64s(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let col = arrow::compute::cast(&column(batch, name)?, &DataType::Int64)?;
    let a = col.as_primitive::<Int64Type>();
    Ok((0..a.len())
        .map(|i| if a.is_null(i) { 0 } else { a.value(i) })
        .collect())
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| InsightError::Internal(format!("no column `{name}` in a result")))
}

/// Days (as numbers, see [`day_number`]) of a `Date32` column: both count from 1970-01-01.
fn dates(batch: &RecordBatch, name: &str) -> Result<Vec<i32>> {
    let col = arrow::compute::cast(&column(batch, name)?, &DataType::Date32)?;
    let a = col.as_primitive::<arrow::datatypes::Date32Type>();
    Ok((0..a.len()).map(|i| a.value(i)).collect())
}

/// Microseconds since the epoch of a timestamp column.
fn micros(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let col = column(batch, name)?;
    let col = arrow::compute::cast(
        &col,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
    )?;
    let col = arrow::compute::cast(&col, &DataType::Int64)?;
    let a = col.as_primitive::<Int64Type>();
    Ok((0..a.len()).map(|i| a.value(i)).collect())
}

fn utc_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        let a = stable_id("x");
        assert_eq!(a, stable_id("x"));
        assert_ne!(a, stable_id("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn day_numbers_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 9).unwrap();
        assert_eq!(day_date(day_number(d)), d);
        assert_eq!(day_number(d) - day_number(d - Duration::days(3)), 3);
    }
}
