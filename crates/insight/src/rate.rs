//! ApiCallRateInsight and ApiErrorRateInsight: minutes in which one event name's write calls,
//! or its failed calls, in one account and region rise far above their baseline.
//!
//! **Series.** Per (account, region, event name), per minute: the number of write calls
//! (`eventRW = 'Write'`, for ApiCallRateInsight) and of calls with an error code (read or
//! write, for ApiErrorRateInsight). Minutes without calls count as zero.
//!
//! **Baseline.** For a minute on day D: the mean per minute over the `baseline_days` days
//! before D (default 7), and the standard deviation per minute over the `learn_days` days
//! before D (default 28; fewer where the store is younger). A series is judged once the store
//! holds `min_history_days` days before D (default 7).
//!
//! **Unusual minute.** count ≥ `min_per_minute` (default 10) and count > mean + `sigmas` ×
//! deviation (default 6). Unusual minutes less than `gap_minutes` (default 5) apart form one
//! insight, from its first unusual minute to the end of its last.
//!
//! **Attributions.** The top 5 identities (`principalId`), user agents and error codes of the
//! counted calls in the window, each with its average per minute in the window and in the
//! baseline days.

use std::collections::{BTreeMap, HashMap};

use chrono::Duration;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;
use serde_json::json;
use trail_query::Engine;
use trail_store::Store;

use crate::{
    Findings, Insight, InsightType, MAX_COVERED, Result, RunOptions, day_number, micros, sql_date,
    strings, top_values, utc_micros,
};

/// The job's name in the store's job state.
pub const JOB: &str = "rate";

/// Parameters of the rate insights (see the module documentation).
#[derive(Debug, Clone)]
pub struct RateOptions {
    pub baseline_days: u32,
    pub learn_days: u32,
    pub min_history_days: u32,
    pub sigmas: f64,
    pub min_per_minute: u64,
    pub gap_minutes: i64,
}

impl Default for RateOptions {
    fn default() -> Self {
        RateOptions {
            baseline_days: 7,
            learn_days: 28,
            min_history_days: 7,
            sigmas: 6.0,
            min_per_minute: 10,
            gap_minutes: 5,
        }
    }
}

impl crate::Job for RateOptions {
    fn name(&self) -> &'static str {
        JOB
    }

    fn title(&self) -> &'static str {
        "rate insights"
    }

    async fn find(&self, engine: &Engine, store: &Store, run: &RunOptions) -> Result<Findings> {
        self::run(engine, store, self, run).await
    }
}

#[derive(Default, Clone)]
struct DayAgg {
    sum: [u64; 2],
    sumsq: [u64; 2],
    /// (minute since the epoch, [writes, errors])
    minutes: Vec<(i64, [u64; 2])>,
}

type SeriesKey = (String, String, String);

/// Run both rate insights over the judged days of `store`. The counts are `series` ((account,
/// region, event name) series with write calls or errors) and `unusualMinutes` (both metrics).
pub async fn run(
    engine: &Engine,
    store: &Store,
    opts: &RateOptions,
    run: &RunOptions,
) -> Result<Findings> {
    let mut report = Findings::default();
    let Some((since, until)) = crate::judged_range(store, JOB, run)? else {
        return Ok(report);
    };
    let Some((first_day, _)) = crate::data_days(store)? else {
        return Ok(report);
    };
    report.since = Some(since);
    report.until = Some(until);
    let mut unusual_minutes = 0u64;
    let learn = opts.learn_days.max(opts.baseline_days).max(1);
    let read_from = (since - Duration::days(i64::from(learn))).max(first_day);
    let sql = format!(
        "SELECT coalesce(recipientAccountId, userIdentity.accountId, '') AS account, \
         coalesce(acsRegion, '') AS region, coalesce(eventName, '') AS name, \
         CAST(to_unixtime(eventTime) AS BIGINT) / 60 AS minute, \
         sum(CASE WHEN eventRW = 'Write' THEN 1 ELSE 0 END) AS writes, \
         sum(CASE WHEN errorCode IS NOT NULL AND errorCode <> '' THEN 1 ELSE 0 END) AS errors \
         FROM events WHERE eventDate >= {} AND eventDate <= {} \
         AND (eventRW = 'Write' OR (errorCode IS NOT NULL AND errorCode <> '')) \
         GROUP BY 1, 2, 3, 4",
        sql_date(read_from),
        sql_date(until)
    );
    let batches = engine.collect(&sql).await?;
    let mut series: BTreeMap<SeriesKey, BTreeMap<i32, DayAgg>> = BTreeMap::new();
    for b in &batches {
        let acc = strings(b, "account")?;
        let reg = strings(b, "region")?;
        let name = strings(b, "name")?;
        let minute = crate::int64s(b, "minute")?;
        let writes = crate::int64s(b, "writes")?;
        let errors = crate::int64s(b, "errors")?;
        for i in 0..b.num_rows() {
            let key = (
                acc[i].clone().unwrap_or_default(),
                reg[i].clone().unwrap_or_default(),
                name[i].clone().unwrap_or_default(),
            );
            let day = minute[i].div_euclid(1440) as i32;
            let c = [writes[i].max(0) as u64, errors[i].max(0) as u64];
            let agg = series.entry(key).or_default().entry(day).or_default();
            for (m, c) in c.iter().enumerate() {
                agg.sum[m] += c;
                agg.sumsq[m] += c * c;
            }
            agg.minutes.push((minute[i], c));
        }
    }
    for days in series.values_mut() {
        for agg in days.values_mut() {
            agg.minutes.sort_unstable_by_key(|x| x.0);
        }
    }
    let series_count = series.len() as u64;
    let (d0, d1) = (day_number(since), day_number(until));
    let first = day_number(first_day);
    let mut found = Vec::new();
    for (key, days) in &series {
        for (m, ty) in [
            (0usize, InsightType::ApiCallRateInsight),
            (1usize, InsightType::ApiErrorRateInsight),
        ] {
            // unusual minutes with their day's baseline mean
            let mut hot: Vec<(i64, u64, f64)> = Vec::new();
            for (&day, agg) in days.range(d0..=d1) {
                let history = day - first;
                if history < opts.min_history_days as i32 || agg.sum[m] < opts.min_per_minute {
                    continue;
                }
                let sum_over = |n: i32| -> (u64, u64, i32) {
                    let n = n.min(history).max(1);
                    let (mut s, mut q) = (0, 0);
                    for (_, a) in days.range(day - n..day) {
                        s += a.sum[m];
                        q += a.sumsq[m];
                    }
                    (s, q, n)
                };
                let (s7, _, n7) = sum_over(opts.baseline_days as i32);
                let mean = s7 as f64 / (f64::from(n7) * 1440.0);
                let (sl, ql, nl) = sum_over(learn as i32);
                let minutes_l = f64::from(nl) * 1440.0;
                let mean_l = sl as f64 / minutes_l;
                let sd = (ql as f64 / minutes_l - mean_l * mean_l).max(0.0).sqrt();
                let threshold = mean + opts.sigmas * sd;
                for &(minute, c) in &agg.minutes {
                    let c = c[m];
                    if c >= opts.min_per_minute && c as f64 > threshold {
                        hot.push((minute, c, mean));
                    }
                }
            }
            unusual_minutes += hot.len() as u64;
            let mut start = 0;
            for k in 1..=hot.len() {
                if k < hot.len() && hot[k].0 - hot[k - 1].0 <= opts.gap_minutes.max(1) {
                    continue;
                }
                found.push((
                    key.clone(),
                    ty,
                    hot[start].0,
                    hot[k - 1].0 + 1,
                    hot[start].2,
                ));
                start = k;
            }
        }
    }
    report.counts = vec![
        ("series", series_count),
        ("unusualMinutes", unusual_minutes),
    ];
    for (key, ty, from_min, to_min, mean) in found {
        report
            .insights
            .push(attribute(engine, opts, &key, ty, from_min, to_min, mean).await?);
    }
    report.insights.sort_by(|a, b| {
        (a.start, a.insight_type, &a.account, &a.region, &a.object).cmp(&(
            b.start,
            b.insight_type,
            &b.account,
            &b.region,
            &b.object,
        ))
    });
    Ok(report)
}

/// Build one insight: read the calls of its window and baseline days for attributions.
async fn attribute(
    engine: &Engine,
    opts: &RateOptions,
    key: &SeriesKey,
    ty: InsightType,
    from_min: i64,
    to_min: i64,
    mean: f64,
) -> Result<Insight> {
    let (account, region, name) = key;
    let day = from_min.div_euclid(1440) as i32;
    let base_from = day - opts.baseline_days.max(1) as i32;
    let last_day = (to_min - 1).div_euclid(1440) as i32;
    let df = engine
        .sql(
            "SELECT eventId AS id, eventTime AS t, eventDate AS day, \
             coalesce(recipientAccountId, userIdentity.accountId, '') AS account, \
             coalesce(acsRegion, '') AS region, coalesce(eventName, '') AS name, \
             userIdentity.principalId AS pid, userAgent AS agent, errorCode AS code, \
             eventRW AS rw FROM events",
        )
        .await?
        .filter(
            col("day")
                .gt_eq(lit(ScalarValue::Date32(Some(base_from))))
                .and(col("day").lt_eq(lit(ScalarValue::Date32(Some(last_day)))))
                .and(col("region").eq(lit(region.as_str())))
                .and(col("name").eq(lit(name.as_str())))
                .and(col("account").eq(lit(account.as_str()))),
        )?;
    let batches = df.collect().await.map_err(|e| engine.map_error(e))?;
    let (w0, w1) = (from_min * 60_000_000, to_min * 60_000_000);
    let b0 = i64::from(base_from) * 86_400_000_000;
    let b1 = i64::from(day) * 86_400_000_000;
    let mut inside: [HashMap<String, u64>; 3] = Default::default();
    let mut base: [HashMap<String, u64>; 3] = Default::default();
    let mut covered: Vec<(i64, String)> = Vec::new();
    for b in &batches {
        let ids = strings(b, "id")?;
        let t = micros(b, "t")?;
        let pid = strings(b, "pid")?;
        let agent = strings(b, "agent")?;
        let code = strings(b, "code")?;
        let rw = strings(b, "rw")?;
        for i in 0..b.num_rows() {
            let has_code = code[i].as_deref().is_some_and(|c| !c.is_empty());
            let counted = match ty {
                InsightType::ApiErrorRateInsight => has_code,
                _ => rw[i].as_deref() == Some("Write"),
            };
            if !counted {
                continue;
            }
            let target = if (w0..w1).contains(&t[i]) {
                covered.push((t[i], ids[i].clone().unwrap_or_default()));
                &mut inside
            } else if (b0..b1).contains(&t[i]) {
                &mut base
            } else {
                continue;
            };
            for (k, v) in [&pid[i], &agent[i], &code[i]].into_iter().enumerate() {
                if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                    *target[k].entry(v.clone()).or_default() += 1;
                }
            }
        }
    }
    covered.sort();
    let minutes = (to_min - from_min).max(1) as f64;
    let baseline_minutes = f64::from(day - base_from) * 1440.0;
    let attrs = |k: usize| top_values(&inside[k], Some((&base[k], baseline_minutes)), minutes, 5);
    let mut context = serde_json::Map::new();
    context.insert(
        "threshold".into(),
        json!({"sigmas": opts.sigmas, "minPerMinute": opts.min_per_minute}),
    );
    Ok(Insight {
        insight_type: ty,
        account: account.clone(),
        region: Some(region.clone()),
        object: name.clone(),
        start: utc_micros(w0),
        end: utc_micros(w1),
        identity: None,
        event_name: Some(name.clone()),
        source_ip: None,
        attributions: vec![
            ("principalId", attrs(0)),
            ("userAgent", attrs(1)),
            ("errorCode", attrs(2)),
        ],
        insight_average: covered.len() as f64 / minutes,
        insight_minutes: minutes as i64,
        baseline_average: mean,
        baseline_minutes: baseline_minutes as i64,
        insight_count: covered.len() as u64,
        context,
        covered: covered
            .into_iter()
            .take(MAX_COVERED)
            .map(|(_, id)| id)
            .collect(),
    })
}
