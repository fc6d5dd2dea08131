//! Delivery: a started trail's events written where the trail points, in the vendor's layout,
//! exactly once.
//!
//! * **What**: the events the trail selects: `EventRW` (`Read`, `Write`, or all), and
//!   `TrailRegion` (all, or the listed regions). A global event (`isGlobal`, or one without a
//!   region) belongs to the trail's home region, as the vendor delivers it.
//! * **Where**: the trail's local directory, which stands for its bucket:
//!   `<dir>/<OssKeyPrefix>/AliyunLogs/Actiontrail/<region>/<YYYY>/<MM>/<DD>/` for a
//!   single-account trail, `.../Actiontrail/<rd_id>/<account>/<region>/<YYYY>/<MM>/<DD>/` for a
//!   multi-account trail (`rd-local`: a local store has no resource directory id). Region
//!   and account are percent-encoded, so event content never chooses a path.
//! * **Insight events**, for a trail with insights enabled: the `insights` table's records,
//!   under `AliyunLogs/Actiontrail-Insight/` in the same layout.
//! * **Account**: a single-account trail with an account delivers that account's events only;
//!   without one, every account's the store holds.
//! * **Files**: gzip JSON arrays of the records byte for byte as stored (`raw`), named
//!   `<account>_Actiontrail_<region>_<generation>_<seq>.json.gz`: one file per day directory
//!   and delivery, the events of that day that arrived since the last, in time order.
//! * **Exactly once**: a delivery looks at the days that changed since the generation it last
//!   delivered through, reads what the trail's directory for each day already holds, and
//!   writes only the events it lacks; each file appears by rename, complete. The trail's
//!   state moves on after the files are in place, so a delivery interrupted at any point
//!   writes, when run again, exactly the events still missing: none twice, none lost.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use trail_store::trails::{EventRw, Trail};
use trail_store::{Store, layout};

use crate::{Engine, QueryError, Result};

/// What one trail's delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub trail: String,
    /// Events written.
    pub events: u64,
    pub files: u64,
    /// Day directories compared with what they held.
    pub days_checked: u64,
}

/// The resource directory id of multi-account layouts.
pub const LOCAL_RD_ID: &str = "rd-local";

fn io(path: &Path, e: std::io::Error) -> QueryError {
    trail_store::StoreError::io(path, e).into()
}

/// The records a day directory already holds (their text).
fn delivered(dir: &Path) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if !path.to_string_lossy().ends_with(".json.gz") {
            continue;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).map_err(|e| io(&path, e))?)
            .read_to_string(&mut text)
            .map_err(|e| io(&path, e))?;
        let records: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&text).map_err(|e| {
                QueryError::Usage(format!(
                    "{}: not a delivered file ({e}); move it out of the trail's directory",
                    path.display()
                ))
            })?;
        out.extend(records.into_iter().map(|r| r.get().to_owned()));
    }
    Ok(out)
}

/// Write `records` as a gzip JSON array at `path`, complete or not at all.
fn write_file(path: &Path, records: &[&str]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut body = String::from("[");
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push_str(",\n");
            }
            body.push_str(r);
        }
        body.push_str("]\n");
        w.write_all(body.as_bytes()).map_err(|e| io(&tmp, e))?;
        w.finish()
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    Ok(())
}

struct Row {
    time_us: i64,
    account: String,
    raw: String,
}

/// Deliver the rows `sql` selects (`t`, `account`, `region`, `day`, `raw`) under
/// `AliyunLogs/<kind>/` (`Actiontrail` or `Actiontrail-Insight`): each day directory gets
/// what it lacks.
async fn deliver_rows(
    engine: &Engine,
    trail: &Trail,
    root: &str,
    sql: &str,
    kind: &str,
    generation: u64,
    report: &mut Delivery,
) -> Result<()> {
    // (region, day, account or "" for single-account) -> rows
    let mut groups: BTreeMap<(String, NaiveDate, String), Vec<Row>> = BTreeMap::new();
    let wanted = trail.regions();
    for b in engine.collect(sql).await? {
        let t = cast(b.column(0), &DataType::Int64)?;
        let t = t.as_primitive::<Int64Type>();
        let text = |i: usize| cast(b.column(i), &DataType::Utf8);
        let (acc, reg, raw) = (text(1)?, text(2)?, text(4)?);
        let (acc, reg, raw) = (
            acc.as_string::<i32>(),
            reg.as_string::<i32>(),
            raw.as_string::<i32>(),
        );
        let day = cast(b.column(3), &DataType::Date32)?;
        let day = day.as_primitive::<Date32Type>();
        for r in 0..b.num_rows() {
            let region = reg.value(r);
            let account = acc.value(r);
            if wanted.as_ref().is_some_and(|w| !w.contains(&region))
                || (!trail.is_organization_trail
                    && trail.account_id.as_deref().is_some_and(|a| a != account))
            {
                continue;
            }
            let Some(date) = NaiveDate::from_num_days_from_ce_opt(day.value(r) + 719_163) else {
                continue;
            };
            let key_account = if trail.is_organization_trail {
                account.to_owned()
            } else {
                String::new()
            };
            groups
                .entry((region.to_owned(), date, key_account))
                .or_default()
                .push(Row {
                    time_us: if t.is_valid(r) { t.value(r) } else { 0 },
                    account: account.to_owned(),
                    raw: raw.value(r).to_owned(),
                });
        }
    }
    let base = {
        let mut p = PathBuf::from(root);
        if let Some(prefix) = &trail.oss_key_prefix {
            p.push(prefix);
        }
        p.join("AliyunLogs").join(kind)
    };
    for ((region, date, account), mut rows) in groups {
        let mut dir = base.clone();
        if trail.is_organization_trail {
            dir.push(LOCAL_RD_ID);
            dir.push(layout::encode_region(Some(&account)));
        }
        dir.push(layout::encode_region(Some(&region)));
        dir.push(format!("{:04}", date.year()));
        dir.push(format!("{:02}", date.month()));
        dir.push(format!("{:02}", date.day()));
        report.days_checked += 1;
        let have = delivered(&dir)?;
        rows.retain(|r| !have.contains(&r.raw));
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| a.time_us.cmp(&b.time_us).then_with(|| a.raw.cmp(&b.raw)));
        rows.dedup_by(|a, b| a.raw == b.raw);
        trail_store::fsutil::create_dir_all_durable(&dir)?;
        let name = format!(
            "{}_{}_{}_g{generation}_{:04}.json.gz",
            layout::encode_region(Some(&rows[0].account)),
            kind,
            layout::encode_region(Some(&region)),
            report.files
        );
        let records: Vec<&str> = rows.iter().map(|r| r.raw.as_str()).collect();
        write_file(&dir.join(name), &records)?;
        trail_store::fsutil::sync_dir(&dir)?;
        report.events += rows.len() as u64;
        report.files += 1;
    }
    Ok(())
}

/// The columns [`deliver_rows`] reads, from `table`.
fn select(trail: &Trail, table: &str, filter: &str) -> String {
    let home = trail.home_region.replace('\'', "''");
    format!(
        "SELECT CAST(\"eventTime\" AS BIGINT) AS t, \
         coalesce(\"recipientAccountId\", \"userIdentity\".\"accountId\", 'unknown') AS account, \
         CASE WHEN coalesce(\"isGlobal\", false) OR \"acsRegion\" IS NULL THEN '{home}' \
         ELSE \"acsRegion\" END AS region, \"eventDate\" AS day, raw FROM {table}{filter}"
    )
}

/// Deliver one started trail (the caller holds the store's writer lock).
pub async fn deliver_trail(
    engine: &Engine,
    store: &Store,
    guard: &trail_store::WriteGuard,
    trail: &Trail,
) -> Result<Delivery> {
    let mut report = Delivery {
        trail: trail.name.clone(),
        ..Default::default()
    };
    let Some(root) = trail.local_directory.as_deref() else {
        let why = "this trail has no local directory (--dir); delivery to a bucket or a log \
                   project needs object storage, which this build does not have";
        trail_store::trails::record_delivery(store, guard, &trail.name, None, Some(why.into()))?;
        return Ok(report);
    };
    let snapshot = store.snapshot()?;
    let since = trail.delivered_generation.unwrap_or(0);
    let days: std::collections::BTreeSet<NaiveDate> = snapshot
        .files
        .iter()
        .filter(|(f, _)| trail.delivered_generation.is_none() || f.generation > since)
        .map(|(f, _)| f.date)
        .collect();
    let mut work: Vec<(String, &str)> = Vec::new();
    if !days.is_empty() {
        let day_list: Vec<String> = days.iter().map(|d| format!("DATE '{d}'")).collect();
        let rw = match trail.event_rw {
            EventRw::Read => " AND \"eventRW\" = 'Read'",
            EventRw::Write => " AND \"eventRW\" = 'Write'",
            EventRw::All => "",
        };
        let filter = format!(" WHERE \"eventDate\" IN ({}){rw}", day_list.join(", "));
        work.push((select(trail, "events", &filter), "Actiontrail"));
    }
    if trail.insight_enabled {
        // Insights are few: every day is compared with what the trail holds.
        work.push((
            select(trail, crate::INSIGHTS_TABLE, ""),
            "Actiontrail-Insight",
        ));
    }
    for (sql, kind) in &work {
        deliver_rows(
            engine,
            trail,
            root,
            sql,
            kind,
            snapshot.generation,
            &mut report,
        )
        .await?;
    }
    trail_store::trails::record_delivery(
        store,
        guard,
        &trail.name,
        Some(snapshot.generation),
        None,
    )?;
    Ok(report)
}

/// Deliver every started trail (or the one named), holding the writer lock throughout.
pub async fn deliver(
    engine: &Engine,
    store: &Store,
    only: Option<&str>,
    wait: bool,
) -> Result<Vec<Delivery>> {
    let guard = store.lock(wait, |_| {})?;
    let trails = trail_store::trails::list(store)?;
    if let Some(name) = only
        && !trails.iter().any(|t| t.name == name)
    {
        return Err(QueryError::Usage(format!(
            "TrailNotFoundException: The specified Trail does not exist. (Name: `{}`)",
            name.escape_debug()
        )));
    }
    let mut out = Vec::new();
    for t in trails
        .iter()
        .filter(|t| t.is_logging() && only.is_none_or(|n| n == t.name))
    {
        out.push(deliver_trail(engine, store, &guard, t).await?);
    }
    Ok(out)
}
