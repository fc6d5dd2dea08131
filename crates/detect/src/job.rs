//! `trail detect`: every enabled detection over the events that arrived since the last run.
//!
//! * **What is read.** The first run (or `since`) reads every event (from that time on). A
//!   later run reads the region/day partitions that commits after its last run touched: events
//!   that arrive late for an old day are judged too, and a partition compaction rewrote is
//!   read again (its findings come out the same and are not stored twice).
//! * **Sigma rules** run in one scan: each rule is a boolean column, rows matching none are
//!   dropped in the scan. Matches of one rule by one identity from one source address on one
//!   UTC day form one finding (first and last seen, event ids, the first event's record).
//! * **Saved analyses** marked `-- detection: <level>` run with `since`/`until` set to the days
//!   read; their rows group the same way (time, identity, address and event ids taken from the
//!   row's columns by name), the earliest row being the evidence. An analysis that lists every
//!   root call gives one finding per root user, address and day, not one per call.
//! * Both stream: results are folded into findings as the scan produces them, so memory
//!   follows the number of findings, not of matched events.
//! * **Findings** are keyed by a hash of what was found (detection, account, identity,
//!   address, day), stored once under `findings/` (one Parquet file per run, written
//!   atomically) and read through the `findings` table, which keeps the latest version of each.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::prelude::{Expr, col, lit};
use serde_json::{Value, json};
use trail_query::Engine;
use trail_query::saved::SavedQuery;
use trail_store::Store;

use crate::{DetectError, Level, Result, SigmaDetection};

use trail_query::findings::FINDINGS_DIR;
/// Most event ids listed in one finding.
pub const MAX_EVENT_IDS: usize = 1_000;

/// What a run does.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// Replay from this time instead of continuing from the last run.
    pub since: Option<DateTime<Utc>>,
    /// Find and report, but store nothing.
    pub dry_run: bool,
}

/// A saved analysis that is a detection.
#[derive(Debug, Clone)]
pub struct AnalysisDetection {
    pub query: SavedQuery,
    pub level: Level,
}

/// What fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: String,
    pub rule_id: String,
    pub rule_title: String,
    /// `sigma` or `analysis`.
    pub rule_kind: &'static str,
    pub level: Level,
    pub tags: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub identity: Option<String>,
    pub source_ip: Option<String>,
    pub event_name: Option<String>,
    pub events: u64,
    pub event_ids: Vec<String>,
    /// The first matched event as stored (Sigma), or the analysis row as JSON.
    pub evidence: String,
}

impl Finding {
    pub fn to_json(&self) -> Value {
        json!({
            "findingId": self.id,
            "ruleId": self.rule_id,
            "ruleTitle": self.rule_title,
            "ruleKind": self.rule_kind,
            "level": self.level.as_str(),
            "tags": self.tags,
            "firstSeen": self.first_seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "lastSeen": self.last_seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "account": self.account,
            "region": self.region,
            "identity": self.identity,
            "sourceIpAddress": self.source_ip,
            "eventName": self.event_name,
            "events": self.events,
            "eventIds": self.event_ids,
            "evidence": self.evidence,
        })
    }
}

/// Per detection: how many findings and matched events it produced, and how long it took
/// (Sigma rules share one scan: their time is the scan's).
#[derive(Debug, Clone)]
pub struct RuleStats {
    pub id: String,
    pub title: String,
    pub kind: &'static str,
    pub findings: u64,
    pub events: u64,
    pub seconds: f64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct DetectReport {
    /// `all`, `since <time>`, or `new since generation <g>` with the partitions read.
    pub scope: String,
    pub partitions: usize,
    pub findings: Vec<Finding>,
    /// Stored now (new or changed), and already stored as they are.
    pub new: usize,
    pub unchanged: usize,
    pub rules: Vec<RuleStats>,
    pub sigma_scan_seconds: f64,
    pub seconds: f64,
    pub dry_run: bool,
}

impl DetectReport {
    pub fn to_json(&self) -> Value {
        json!({
            "scope": self.scope,
            "partitions": self.partitions,
            "findings": self.findings.len(),
            "new": self.new,
            "unchanged": self.unchanged,
            "dryRun": self.dry_run,
            "seconds": self.seconds,
            "sigmaScanSeconds": self.sigma_scan_seconds,
            "rules": self.rules.iter().map(|r| json!({
                "id": r.id, "title": r.title, "kind": r.kind, "findings": r.findings,
                "events": r.events, "seconds": r.seconds,
            })).collect::<Vec<_>>(),
            "records": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Where detection keeps its state (relative to the store).
fn state_path() -> String {
    format!("{}/detect.json", trail_store::manifest::META_DIR)
}

/// The store generation the last run read through.
pub fn last_generation(store: &Store) -> Result<Option<u64>> {
    let rel = state_path();
    let Some(bytes) = store.read_aux(&rel)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        DetectError::Usage(format!(
            "{}: not a detection state ({e}); delete it to judge the whole store again",
            store.display_path(&rel)
        ))
    })?;
    Ok(v["generation"].as_u64())
}

fn sql_date(d: NaiveDate) -> Expr {
    lit(datafusion::scalar::ScalarValue::Date32(Some(
        (d - NaiveDate::default()).num_days() as i32,
    )))
}

/// A stable id from what a finding is about.
fn finding_id(parts: &[&str]) -> String {
    trail_store::uuid_shaped(xxhash_rust::xxh3::xxh3_128(parts.join("\u{1f}").as_bytes()))
}

fn text_col(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let Some(c) = b.column_by_name(name) else {
        return Ok(vec![None; b.num_rows()]);
    };
    let c = cast(c, &DataType::Utf8)?;
    let a = c.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
        .collect())
}

fn micros_col(b: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let Some(c) = b.column_by_name(name) else {
        return Ok(vec![None; b.num_rows()]);
    };
    let c = cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let c = cast(&c, &DataType::Int64)?;
    let a = c.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

fn utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The days and partitions a run reads: `None` for every event.
struct Scope {
    describe: String,
    filter: Option<Expr>,
    partitions: usize,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
    generation: u64,
}

fn scope(store: &Store, opts: &DetectOptions) -> Result<Option<Scope>> {
    let snap = store.snapshot()?;
    let generation = snap.generation;
    let range = snap.date_range();
    if let Some(t) = opts.since {
        let day = t.date_naive();
        return Ok(Some(Scope {
            describe: format!(
                "since {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            filter: Some(col("\"eventDate\"").gt_eq(sql_date(day)).and(
                col("\"eventTime\"").gt_eq(lit(
                    datafusion::scalar::ScalarValue::TimestampMicrosecond(
                        Some(t.timestamp_micros()),
                        Some("UTC".into()),
                    ),
                )),
            )),
            partitions: snap.partitions().len(),
            first_day: Some(day),
            last_day: range.map(|r| r.1),
            generation,
        }));
    }
    let Some(last) = last_generation(store)? else {
        return Ok(Some(Scope {
            describe: "all events (first run)".into(),
            filter: None,
            partitions: snap.partitions().len(),
            first_day: range.map(|r| r.0),
            last_day: range.map(|r| r.1),
            generation,
        }));
    };
    let touched: BTreeSet<(Option<String>, NaiveDate)> = snap
        .files
        .iter()
        .filter(|(f, _)| f.generation > last)
        .map(|(f, _)| (f.region.clone(), f.date))
        .collect();
    if touched.is_empty() {
        return Ok(None);
    }
    let filter = touched
        .iter()
        .map(|(region, day)| {
            // The partition value as the path spells it (and decoded, should the reader
            // decode it).
            let encoded = trail_store::layout::encode_region(region.as_deref());
            let mut r = col("region").eq(lit(encoded.clone()));
            if let Some(plain) = region.as_deref().filter(|p| **p != encoded) {
                r = r.or(col("region").eq(lit(plain.to_owned())));
            }
            r.and(col("\"eventDate\"").eq(sql_date(*day)))
        })
        .reduce(Expr::or);
    Ok(Some(Scope {
        describe: format!("events committed after generation {last}"),
        filter,
        partitions: touched.len(),
        first_day: touched.iter().map(|t| t.1).min(),
        last_day: touched.iter().map(|t| t.1).max(),
        generation,
    }))
}

/// One event a Sigma rule matched.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedEvent {
    /// Index of the rule in the list scanned.
    pub rule: usize,
    pub event_id: Option<String>,
    pub time: DateTime<Utc>,
    pub region: Option<String>,
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    pub account: Option<String>,
    /// The user name, else the principal id, else the ARN.
    pub identity: Option<String>,
    /// The event as stored.
    pub raw: String,
}

/// Every event of `events` (narrowed by `filter`) that any of `rules` matches, in one scan:
/// each rule is a boolean column, and rows matching none are dropped in the scan. Sorted by
/// time (for `trail sigma run`, which prints them all).
pub async fn scan_sigma(
    engine: &Engine,
    rules: &[SigmaDetection],
    filter: Option<Expr>,
) -> Result<Vec<MatchedEvent>> {
    let mut out = Vec::new();
    scan_sigma_each(engine, rules, filter, |m| out.push(m)).await?;
    out.sort_by(|a, b| (a.time, a.rule, &a.event_id).cmp(&(b.time, b.rule, &b.event_id)));
    Ok(out)
}

/// [`scan_sigma`] handing each match to `on_match` as the scan produces it, in no particular
/// order: memory stays flat however many events match.
pub async fn scan_sigma_each(
    engine: &Engine,
    rules: &[SigmaDetection],
    filter: Option<Expr>,
    mut on_match: impl FnMut(MatchedEvent),
) -> Result<()> {
    use futures::StreamExt;
    if rules.is_empty() {
        return Ok(());
    }
    let mut df = engine.context().table("events").await?;
    if let Some(f) = filter {
        df = df.filter(f)?;
    }
    let field =
        |name: &str| datafusion::functions::expr_fn::get_field(col("\"userIdentity\""), name);
    let mut select = vec![
        col("\"eventId\"").alias("id"),
        col("\"eventTime\"").alias("t"),
        col("\"acsRegion\"").alias("region"),
        col("\"eventName\"").alias("name"),
        col("\"sourceIpAddress\"").alias("ip"),
        datafusion::functions::expr_fn::coalesce(vec![
            col("\"recipientAccountId\""),
            field("accountId"),
        ])
        .alias("account"),
        datafusion::functions::expr_fn::coalesce(vec![
            field("userName"),
            field("principalId"),
            field("arn"),
        ])
        .alias("identity"),
        col("raw"),
    ];
    let mut any: Option<Expr> = None;
    for (i, r) in rules.iter().enumerate() {
        select.push(r.predicate.clone().alias(format!("r{i}")));
        let c = col(format!("r{i}"));
        any = Some(match any {
            None => c,
            Some(a) => a.or(c),
        });
    }
    let mut df = df.select(select)?;
    if let Some(a) = any {
        df = df.filter(a)?;
    }
    let mut stream = engine
        .prune(df)
        .await?
        .execute_stream()
        .await
        .map_err(|e| engine.map_error(e))?;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| engine.map_error(e))?;
        let ids = text_col(&b, "id")?;
        let times = micros_col(&b, "t")?;
        let regions = text_col(&b, "region")?;
        let names = text_col(&b, "name")?;
        let ips = text_col(&b, "ip")?;
        let accounts = text_col(&b, "account")?;
        let who = text_col(&b, "identity")?;
        let raws = b
            .column_by_name("raw")
            .map(|r| cast(r, &DataType::Utf8))
            .transpose()?;
        let raws = raws.as_ref().map(|r| r.as_string::<i32>());
        for ri in 0..rules.len() {
            let Some(flags) = b.column_by_name(&format!("r{ri}")) else {
                continue;
            };
            let flags = flags.as_boolean();
            for row in 0..b.num_rows() {
                if flags.is_valid(row) && flags.value(row) {
                    on_match(MatchedEvent {
                        rule: ri,
                        event_id: ids[row].clone(),
                        time: utc(times[row].unwrap_or_default()),
                        region: regions[row].clone(),
                        event_name: names[row].clone(),
                        source_ip: ips[row].clone(),
                        account: accounts[row].clone(),
                        identity: who[row].clone(),
                        raw: raws
                            .filter(|r| r.is_valid(row))
                            .map(|r| r.value(row).to_owned())
                            .unwrap_or_default(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Findings under construction: one per (detection, account, identity, source address, UTC
/// day). The evidence is the earliest match's (ties: the smallest event id); the event ids
/// kept are the smallest [`MAX_EVENT_IDS`], so the result does not depend on the order rows
/// arrive in, and a group holds no more than that however many events it covers.
#[derive(Default)]
struct Groups {
    /// By a 128-bit hash of (kind, detection, account, identity, address, day).
    groups: HashMap<u128, Group>,
}

/// A finding, the event ids kept for it, and the (time, event id) of its evidence.
type Group = (Finding, BTreeSet<String>, (DateTime<Utc>, String));

/// One matched row, as [`Groups::add`] takes it.
struct Hit<'a> {
    kind: &'static str,
    rule_id: &'a str,
    rule_title: &'a str,
    level: Level,
    tags: &'a [String],
    time: Option<DateTime<Utc>>,
    account: Option<&'a str>,
    region: Option<&'a str>,
    identity: Option<&'a str>,
    source_ip: Option<&'a str>,
    event_name: Option<&'a str>,
    /// Events this row stands for (1 for an event; an aggregate row may say more).
    events: u64,
    event_ids: Vec<String>,
}

impl Groups {
    /// Add a hit; `evidence` is asked for only when the hit is the group's earliest so far.
    fn add(&mut self, hit: Hit<'_>, evidence: impl FnOnce() -> String) {
        let day = hit.time.map(|t| t.date_naive());
        let key = {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for part in [
                hit.kind,
                hit.rule_id,
                hit.account.unwrap_or_default(),
                hit.identity.unwrap_or_default(),
                hit.source_ip.unwrap_or_default(),
            ] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
            h.update(
                &day.map_or(i64::MIN, |d| d.num_days_from_ce() as i64)
                    .to_le_bytes(),
            );
            h.digest128()
        };
        let t = hit.time.unwrap_or_default();
        let first_id = hit.event_ids.iter().min().cloned().unwrap_or_default();
        let order = (t, first_id);
        match self.groups.get_mut(&key) {
            Some((f, ids, first)) => {
                f.events += hit.events;
                f.first_seen = f.first_seen.min(t);
                f.last_seen = f.last_seen.max(t);
                if order < *first {
                    *first = order;
                    f.region = hit.region.map(str::to_owned);
                    f.event_name = hit.event_name.map(str::to_owned);
                    f.evidence = evidence();
                }
                keep_smallest(ids, hit.event_ids);
            }
            None => {
                let id = finding_id(&[
                    hit.kind,
                    hit.rule_id,
                    hit.account.unwrap_or_default(),
                    hit.identity.unwrap_or_default(),
                    hit.source_ip.unwrap_or_default(),
                    &day.map(|d| d.to_string()).unwrap_or_default(),
                ]);
                let mut ids = BTreeSet::new();
                keep_smallest(&mut ids, hit.event_ids);
                let f = Finding {
                    id,
                    rule_id: hit.rule_id.to_owned(),
                    rule_title: hit.rule_title.to_owned(),
                    rule_kind: hit.kind,
                    level: hit.level,
                    tags: hit.tags.to_vec(),
                    first_seen: t,
                    last_seen: t,
                    account: hit.account.map(str::to_owned),
                    region: hit.region.map(str::to_owned),
                    identity: hit.identity.map(str::to_owned),
                    source_ip: hit.source_ip.map(str::to_owned),
                    event_name: hit.event_name.map(str::to_owned),
                    events: hit.events,
                    event_ids: Vec::new(),
                    evidence: evidence(),
                };
                self.groups.insert(key, (f, ids, order));
            }
        }
    }

    /// The findings, in a stable order (first seen, then id).
    fn finish(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .groups
            .into_values()
            .map(|(mut f, ids, _)| {
                f.event_ids = ids.into_iter().collect();
                f
            })
            .collect();
        out.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
        out
    }
}

fn keep_smallest(ids: &mut BTreeSet<String>, new: Vec<String>) {
    for id in new {
        if ids.len() < MAX_EVENT_IDS || ids.last().is_some_and(|l| id < *l) {
            ids.insert(id);
            if ids.len() > MAX_EVENT_IDS {
                ids.pop_last();
            }
        }
    }
}

/// Run the Sigma rules over the scope and group their matches into findings.
async fn run_sigma(
    engine: &Engine,
    rules: &[SigmaDetection],
    scope: &Scope,
) -> Result<(Vec<Finding>, Vec<RuleStats>)> {
    let mut stats: Vec<RuleStats> = rules
        .iter()
        .map(|r| RuleStats {
            id: r.id(),
            title: r.rule.title.clone(),
            kind: "sigma",
            findings: 0,
            events: 0,
            seconds: 0.0,
        })
        .collect();
    let mut groups = Groups::default();
    scan_sigma_each(engine, rules, scope.filter.clone(), |m| {
        let rule = &rules[m.rule];
        stats[m.rule].events += 1;
        let rule_id = rule.id();
        let raw = m.raw;
        groups.add(
            Hit {
                kind: "sigma",
                rule_id: &rule_id,
                rule_title: &rule.rule.title,
                level: rule.level(),
                tags: &rule.rule.tags,
                time: Some(m.time),
                account: m.account.as_deref(),
                region: m.region.as_deref(),
                identity: m.identity.as_deref(),
                source_ip: m.source_ip.as_deref(),
                event_name: m.event_name.as_deref(),
                events: 1,
                event_ids: m.event_id.into_iter().collect(),
            },
            || raw,
        );
    })
    .await?;
    let out = groups.finish();
    for f in &out {
        if let Some(s) = stats.iter_mut().find(|s| s.id == f.rule_id) {
            s.findings += 1;
        }
    }
    Ok((out, stats))
}

/// The events of `[since, until)` (either open), as a filter on `events`.
pub fn time_filter(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Option<Expr> {
    let ts = |t: DateTime<Utc>| {
        lit(datafusion::scalar::ScalarValue::TimestampMicrosecond(
            Some(t.timestamp_micros()),
            Some("UTC".into()),
        ))
    };
    let lo = since.map(|t| col("\"eventTime\"").gt_eq(ts(t)));
    let hi = until.map(|t| col("\"eventTime\"").lt(ts(t)));
    match (lo, hi) {
        (Some(a), Some(b)) => Some(a.and(b)),
        (a, b) => a.or(b),
    }
}

const TIME_COLUMNS: &[&str] = &[
    "eventTime",
    "window_start",
    "first_seen",
    "firstSeen",
    "t",
    "time",
];
const IDENTITY_COLUMNS: &[&str] = &[
    "actor",
    "identity",
    "userName",
    "user",
    "u",
    "who",
    "principalId",
    "principal",
    "new_user",
];
const IP_COLUMNS: &[&str] = &["sourceIpAddress", "ip", "source_ip", "sourceIPAddress"];
const ACCOUNT_COLUMNS: &[&str] = &["recipientAccountId", "account", "accountId"];
const ID_COLUMNS: &[&str] = &["eventId", "eventIds", "event_ids"];

fn first_of(b: &RecordBatch, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|n| {
            b.schema()
                .fields()
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(n))
        })
        .and_then(|n| {
            b.schema()
                .fields()
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(n))
                .map(|f| f.name().clone())
        })
}

/// Run one saved analysis as a detection over the scope's days.
async fn run_analysis(
    engine: &Engine,
    a: &AnalysisDetection,
    scope: &Scope,
) -> Result<(Vec<Finding>, RuleStats)> {
    let started = Instant::now();
    let mut params = BTreeMap::new();
    let has = |p: &str| a.query.params.iter().any(|x| x.name == p);
    if let Some(d) = scope.first_day
        && has("since")
    {
        params.insert("since".to_owned(), format!("{d} 00:00:00"));
    }
    if let Some(d) = scope.last_day
        && has("until")
    {
        params.insert(
            "until".to_owned(),
            format!("{} 00:00:00", d + chrono::Duration::days(1)),
        );
    }
    let sql = a.query.bind(&params)?;
    let mut stream = engine
        .sql(&sql)
        .await?
        .execute_stream()
        .await
        .map_err(|e| engine.map_error(e))?;
    let mut groups = Groups::default();
    let tags: Vec<String> = a.query.tactic.iter().cloned().collect();
    while let Some(b) = futures::StreamExt::next(&mut stream).await {
        let b = b.map_err(|e| engine.map_error(e))?;
        // A time column by name, else the first timestamp column.
        let time = first_of(&b, TIME_COLUMNS).or_else(|| {
            b.schema()
                .fields()
                .iter()
                .find(|f| matches!(f.data_type(), DataType::Timestamp(..)))
                .map(|f| f.name().clone())
        });
        let times = match &time {
            Some(c) => micros_col(&b, c).unwrap_or_else(|_| vec![None; b.num_rows()]),
            None => vec![None; b.num_rows()],
        };
        // Each text column cast to plain strings once per batch, read by reference per row.
        let col_text = |names: &[&str]| -> Result<Option<datafusion::arrow::array::ArrayRef>> {
            match first_of(&b, names).and_then(|c| b.column_by_name(&c).cloned()) {
                Some(c) => Ok(Some(cast(&c, &DataType::Utf8)?)),
                None => Ok(None),
            }
        };
        let who = col_text(IDENTITY_COLUMNS)?;
        let ips = col_text(IP_COLUMNS)?;
        let accounts = col_text(ACCOUNT_COLUMNS)?;
        let ids = col_text(ID_COLUMNS)?;
        let regions = col_text(&["acsRegion", "region"])?;
        let names = col_text(&["eventName"])?;
        fn get(a: &Option<datafusion::arrow::array::ArrayRef>, row: usize) -> Option<&str> {
            a.as_ref()
                .map(|a| a.as_string::<i32>())
                .filter(|a| a.is_valid(row))
                .map(|a| a.value(row))
        }
        for (row, time) in times.iter().enumerate() {
            let event_ids: Vec<String> = get(&ids, row)
                .map(|s| {
                    s.trim_matches(['[', ']'])
                        .split(',')
                        .map(|x| x.trim().trim_matches('"').to_owned())
                        .filter(|x| !x.is_empty())
                        .take(MAX_EVENT_IDS)
                        .collect()
                })
                .unwrap_or_default();
            let b = &b;
            groups.add(
                Hit {
                    kind: "analysis",
                    rule_id: &a.query.name,
                    rule_title: &a.query.title,
                    level: a.level,
                    tags: &tags,
                    time: time.map(utc),
                    account: get(&accounts, row),
                    region: get(&regions, row),
                    identity: get(&who, row),
                    source_ip: get(&ips, row),
                    event_name: get(&names, row),
                    events: event_ids.len().max(1) as u64,
                    event_ids,
                },
                // The whole row, as evidence.
                || row_json(b, row),
            );
        }
    }
    let out = groups.finish();
    let stats = RuleStats {
        id: a.query.name.clone(),
        title: a.query.title.clone(),
        kind: "analysis",
        findings: out.len() as u64,
        events: out.iter().map(|f| f.events).sum(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((out, stats))
}

/// One row of a batch as a JSON object (text).
fn row_json(b: &RecordBatch, row: usize) -> String {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
        if w.write(&b.slice(row, 1)).is_err() || w.finish().is_err() {
            return String::new();
        }
    }
    serde_json::from_slice::<Vec<Value>>(&buf)
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The stored version of each finding: (events, last seen) by id.
async fn stored(engine: &Engine) -> Result<HashMap<String, (u64, i64)>> {
    let mut out = HashMap::new();
    {
        let batches = engine
            .collect("SELECT \"findingId\" AS id, events AS n, \"lastSeen\" AS t FROM findings")
            .await?;
        for b in &batches {
            let ids = text_col(b, "id")?;
            let n = cast(b.column(1), &DataType::UInt64)?;
            let n = n.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            let t = micros_col(b, "t")?;
            for i in 0..b.num_rows() {
                if let Some(id) = &ids[i] {
                    out.insert(id.clone(), (n.value(i), t[i].unwrap_or_default()));
                }
            }
        }
    }
    Ok(out)
}

fn write_findings(store: &Store, findings: &[Finding], run: u64) -> Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "findingId": f.id, "ruleId": f.rule_id, "ruleTitle": f.rule_title,
                "ruleKind": f.rule_kind, "level": f.level.as_str(),
                "tags": serde_json::to_string(&f.tags).unwrap_or_default(),
                "firstSeen": f.first_seen.timestamp_micros(),
                "lastSeen": f.last_seen.timestamp_micros(),
                "account": f.account, "region": f.region, "identity": f.identity,
                "sourceIpAddress": f.source_ip, "eventName": f.event_name, "events": f.events,
                "eventIds": serde_json::to_string(&f.event_ids).unwrap_or_default(),
                "evidence": f.evidence, "run": run,
            })
        })
        .collect();
    let schema = trail_query::findings::schema();
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len())
        .build_decoder()?;
    decoder.serialize(&rows)?;
    let Some(batch) = decoder.flush()? else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    {
        let props = trail_store::props::writer_properties(batch.num_rows());
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(props))?;
        w.write(&batch)?;
        w.close()?;
    }
    store.write_aux(&format!("{FINDINGS_DIR}/run-{run:08}.parquet"), &bytes)?;
    Ok(())
}

/// Run the detections. The caller holds the store's writer lock unless it is a dry run.
pub async fn run(
    engine: &Engine,
    store: &Store,
    sigma: &[SigmaDetection],
    analyses: &[AnalysisDetection],
    opts: &DetectOptions,
) -> Result<DetectReport> {
    let started = Instant::now();
    let Some(scope) = scope(store, opts)? else {
        return Ok(DetectReport {
            scope: "nothing new since the last run".into(),
            partitions: 0,
            findings: Vec::new(),
            new: 0,
            unchanged: 0,
            rules: Vec::new(),
            sigma_scan_seconds: 0.0,
            seconds: started.elapsed().as_secs_f64(),
            dry_run: opts.dry_run,
        });
    };
    let scan = Instant::now();
    let (mut findings, mut rules) = run_sigma(engine, sigma, &scope).await?;
    let sigma_scan_seconds = scan.elapsed().as_secs_f64();
    for r in &mut rules {
        r.seconds = sigma_scan_seconds;
    }
    for a in analyses {
        let (f, s) = run_analysis(engine, a, &scope).await?;
        findings.extend(f);
        rules.push(s);
    }
    findings
        .sort_by(|a, b| (a.first_seen, &a.rule_id, &a.id).cmp(&(b.first_seen, &b.rule_id, &b.id)));
    let have = stored(engine).await?;
    let changed: Vec<Finding> = findings
        .iter()
        .filter(|f| {
            have.get(&f.id)
                .is_none_or(|(n, t)| *n != f.events || *t != f.last_seen.timestamp_micros())
        })
        .cloned()
        .collect();
    let unchanged = findings.len() - changed.len();
    if !opts.dry_run {
        let run = last_run_number(store)? + 1;
        write_findings(store, &changed, run)?;
        let body = json!({"generation": scope.generation, "run": run});
        store.write_aux(&state_path(), body.to_string().as_bytes())?;
    }
    Ok(DetectReport {
        scope: scope.describe,
        partitions: scope.partitions,
        new: changed.len(),
        unchanged,
        findings,
        rules,
        sigma_scan_seconds,
        seconds: started.elapsed().as_secs_f64(),
        dry_run: opts.dry_run,
    })
}

fn last_run_number(store: &Store) -> Result<u64> {
    Ok(store
        .read_aux(&state_path())?
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        .and_then(|v| v["run"].as_u64())
        .unwrap_or(0))
}
