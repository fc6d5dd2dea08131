//! Trails: which events go where, managed as the vendor's trail API does (CreateTrail,
//! DescribeTrails, UpdateTrail, DeleteTrail, StartLogging, StopLogging, GetTrailStatus), kept
//! in the store's metadata (`_trail/trails.json`, replaced atomically under the writer lock).
//!
//! Every rule of CreateTrail is checked before anything is written, and a broken rule is a
//! [`TrailError`] with the vendor's error code and message and the offending value:
//!
//! | rule | code |
//! |---|---|
//! | name: 6 to 36 characters, a lowercase letter first, then lowercase letters, digits, `-`, `_` | `InvalidTrailNameException` |
//! | name unique in the store | `TrailAlreadyExistsException` |
//! | bucket: 3 to 63 characters, a lowercase letter or digit first, then lowercase letters, digits, `-` | `InvalidQueryParameter` |
//! | key prefix (may be empty): 6 to 32 characters, a letter first, then letters, digits, `-`, `/`, `_` | `InvalidPrefixException` |
//! | at least one destination (bucket, log project, or local directory) | `InvalidDeliveryConfigurationException` |
//! | at most 5 single-account trails per home region | `MaximumNumberOfTrailsExceededException` |
//! | at most one multi-account trail | `MaximumNumberOfOrganizationTrailExceeded` |
//! | a bucket (or directory) no other trail delivers to | `RepeatOssBucket` |
//! | the destination directory exists | `BucketDoesNotExistException` |
//! | `EventRW` Read, Write or All; `TrailRegion` All or known regions; a known home region; a log project ARN `acs:log:<region>:<account>:project/<name>` | `InvalidQueryParameter` |
//! | a trail that exists (update, delete, start, stop, status) | `TrailNotFoundException` |
//!
//! A local directory (`dir`) stands for the bucket: delivery writes there, in the bucket's
//! layout, `<dir>/<OssKeyPrefix>/AliyunLogs/Actiontrail/...`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Store, fsutil};

/// The trails file in the store's metadata directory.
pub const TRAILS_FILE: &str = "trails.json";
/// Single-account trails per home region.
pub const MAX_TRAILS_PER_REGION: usize = 5;

/// The regions ActionTrail supports (the public cloud, Finance Cloud and Gov Cloud).
pub const REGIONS: [&str; 29] = [
    "cn-hangzhou",
    "cn-shanghai",
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-northeast-1",
    "eu-central-1",
    "eu-west-1",
    "us-west-1",
    "us-east-1",
    "ap-south-1",
    "me-east-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-beijing-finance-1",
    "cn-north-2-gov-1",
    "cn-wulanchabu-gov-1",
];

/// A broken trail rule: the vendor's code and message, and the value that broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} ({parameter}: `{value}`)")]
pub struct TrailError {
    pub code: &'static str,
    pub message: &'static str,
    /// The request parameter at fault (`Name`, `OssKeyPrefix`, ...).
    pub parameter: &'static str,
    pub value: String,
}

fn err(code: &'static str, parameter: &'static str, value: &str) -> TrailError {
    let message = match code {
        "InvalidTrailNameException" => "The specified Trail name is invalid.",
        "TrailAlreadyExistsException" => "The specified Trail name already exists.",
        "InvalidPrefixException" => "The specified OSS bucket prefix is invalid.",
        "InvalidDeliveryConfigurationException" => {
            "You must specify at least one Log Service project or OSS bucket for a Trail."
        }
        "MaximumNumberOfTrailsExceededException" => {
            "The number of Trails in the same region exceeds the upper limit (5)."
        }
        "MaximumNumberOfOrganizationTrailExceeded" => {
            "Your account can create only one organization trail."
        }
        "RepeatOssBucket" => {
            "The specified OSS bucket is already in use. We recommend that you modify the \
             existing Trail or specify another bucket."
        }
        "BucketDoesNotExistException" => "The specified OSS bucket does not exist.",
        "TrailNotFoundException" => "The specified Trail does not exist.",
        _ => "The specified query parameter is invalid.",
    };
    TrailError {
        code,
        message,
        parameter,
        value: value.to_owned(),
    }
}

/// What a trail delivers by read/write type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventRw {
    Read,
    Write,
    All,
}

impl EventRw {
    pub fn parse(s: &str) -> Result<EventRw, TrailError> {
        match s {
            "Read" => Ok(EventRw::Read),
            "Write" => Ok(EventRw::Write),
            "All" => Ok(EventRw::All),
            _ => Err(err("InvalidQueryParameter", "EventRW", s)),
        }
    }
}

/// A trail as the store keeps it, in the vendor's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub oss_bucket_name: Option<String>,
    pub oss_key_prefix: Option<String>,
    pub oss_write_role_arn: Option<String>,
    pub sls_project_arn: Option<String>,
    pub sls_write_role_arn: Option<String>,
    /// A local directory that stands for the bucket (delivery writes there).
    pub local_directory: Option<String>,
    #[serde(rename = "EventRW")]
    pub event_rw: EventRw,
    /// `All`, or regions separated by commas.
    pub trail_region: String,
    pub is_organization_trail: bool,
    /// `Enable` while logging (started), `Disable` otherwise.
    pub status: String,
    pub create_time: String,
    pub update_time: String,
    pub start_logging_time: Option<String>,
    pub stop_logging_time: Option<String>,
    pub latest_delivery_time: Option<String>,
    pub latest_delivery_error: Option<String>,
    /// The store generation delivered through (`None`: nothing delivered yet).
    #[serde(default)]
    pub delivered_generation: Option<u64>,
    /// A single-account trail's account (`None`: every account the store holds).
    #[serde(default)]
    pub account_id: Option<String>,
    /// Insight events are delivered too (under `Actiontrail-Insight/`).
    #[serde(default)]
    pub insight_enabled: bool,
}

impl Trail {
    /// Whether the trail is logging (started).
    pub fn is_logging(&self) -> bool {
        self.status == "Enable"
    }

    /// The regions the trail delivers (`None`: all).
    pub fn regions(&self) -> Option<Vec<&str>> {
        (self.trail_region != "All").then(|| self.trail_region.split(',').collect())
    }
}

/// The settable fields of CreateTrail and UpdateTrail (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct TrailSpec {
    pub oss_bucket_name: Option<String>,
    pub oss_key_prefix: Option<String>,
    pub oss_write_role_arn: Option<String>,
    pub sls_project_arn: Option<String>,
    pub sls_write_role_arn: Option<String>,
    pub local_directory: Option<PathBuf>,
    pub event_rw: Option<String>,
    pub trail_region: Option<String>,
    pub is_organization_trail: Option<bool>,
    pub home_region: Option<String>,
    pub account_id: Option<String>,
    pub insight_enabled: Option<bool>,
}

fn check_name(name: &str) -> Result<(), TrailError> {
    let ok = (6..=36).contains(&name.chars().count())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err("InvalidTrailNameException", "Name", name))
    }
}

fn check_bucket(b: &str) -> Result<(), TrailError> {
    let ok = (3..=63).contains(&b.chars().count())
        && b.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err("InvalidQueryParameter", "OssBucketName", b))
    }
}

fn check_prefix(p: &str) -> Result<(), TrailError> {
    if p.is_empty() {
        return Ok(());
    }
    let ok = (6..=32).contains(&p.chars().count())
        && p.starts_with(|c: char| c.is_ascii_alphabetic())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_'));
    if ok {
        Ok(())
    } else {
        Err(err("InvalidPrefixException", "OssKeyPrefix", p))
    }
}

fn check_region(parameter: &'static str, r: &str) -> Result<(), TrailError> {
    if REGIONS.contains(&r) {
        Ok(())
    } else {
        Err(err("InvalidQueryParameter", parameter, r))
    }
}

fn check_trail_region(r: &str) -> Result<String, TrailError> {
    if r == "All" {
        return Ok(r.to_owned());
    }
    let mut list: Vec<&str> = r.split(',').map(str::trim).collect();
    for x in &list {
        check_region("TrailRegion", x)?;
    }
    list.dedup();
    Ok(list.join(","))
}

fn check_sls_arn(a: &str) -> Result<(), TrailError> {
    let parts: Vec<&str> = a.split(':').collect();
    let ok = parts.len() == 5
        && parts[0] == "acs"
        && parts[1] == "log"
        && REGIONS.contains(&parts[2])
        && parts[4]
            .strip_prefix("project/")
            .is_some_and(|p| !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(err("InvalidQueryParameter", "SlsProjectArn", a))
    }
}

/// What the trails file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TrailsFile {
    trails: Vec<Trail>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A trails operation that failed: a broken rule, or the store.
#[derive(Debug, thiserror::Error)]
pub enum TrailsError {
    #[error(transparent)]
    Rule(#[from] TrailError),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

type Result<T, E = TrailsError> = std::result::Result<T, E>;

fn path(store: &Store) -> PathBuf {
    store
        .root()
        .join(crate::manifest::META_DIR)
        .join(TRAILS_FILE)
}

/// The store's trails, by name.
pub fn list(store: &Store) -> Result<Vec<Trail>> {
    let p = path(store);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::StoreError::io(&p, e).into()),
    };
    let file: TrailsFile =
        serde_json::from_slice(&bytes).map_err(|e| crate::StoreError::BadManifest {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    let mut trails = file.trails;
    trails.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(trails)
}

/// One trail.
pub fn describe(store: &Store, name: &str) -> Result<Trail> {
    list(store)?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| err("TrailNotFoundException", "Name", name).into())
}

fn save(store: &Store, trails: Vec<Trail>) -> Result<()> {
    let body = serde_json::to_vec_pretty(&TrailsFile { trails }).map_err(|e| {
        crate::StoreError::BadManifest {
            path: path(store),
            reason: e.to_string(),
        }
    })?;
    fsutil::write_atomic(&path(store), &body)?;
    Ok(())
}

/// Check a trail against every rule, given the others.
fn check(trail: &Trail, others: &[Trail]) -> Result<(), TrailError> {
    check_name(&trail.name)?;
    check_region("HomeRegion", &trail.home_region)?;
    if let Some(b) = &trail.oss_bucket_name {
        check_bucket(b)?;
    }
    if let Some(p) = &trail.oss_key_prefix {
        check_prefix(p)?;
    }
    if let Some(a) = &trail.sls_project_arn {
        check_sls_arn(a)?;
    }
    if trail.oss_bucket_name.is_none()
        && trail.sls_project_arn.is_none()
        && trail.local_directory.is_none()
    {
        return Err(err(
            "InvalidDeliveryConfigurationException",
            "OssBucketName",
            "",
        ));
    }
    if let Some(d) = &trail.local_directory
        && !Path::new(d).is_dir()
    {
        return Err(err("BucketDoesNotExistException", "OssBucketName", d));
    }
    if others.iter().any(|o| o.name == trail.name) {
        return Err(err("TrailAlreadyExistsException", "Name", &trail.name));
    }
    let same_bucket = |o: &Trail| {
        (trail.oss_bucket_name.is_some() && o.oss_bucket_name == trail.oss_bucket_name)
            || (trail.local_directory.is_some() && o.local_directory == trail.local_directory)
    };
    if let Some(o) = others.iter().find(|o| same_bucket(o)) {
        let b = trail
            .oss_bucket_name
            .clone()
            .or_else(|| trail.local_directory.clone())
            .unwrap_or_default();
        return Err(TrailError {
            value: format!("{b}, used by trail {}", o.name),
            ..err("RepeatOssBucket", "OssBucketName", "")
        });
    }
    if trail.is_organization_trail {
        if let Some(o) = others.iter().find(|o| o.is_organization_trail) {
            return Err(TrailError {
                value: format!("{} (already: {})", trail.name, o.name),
                ..err(
                    "MaximumNumberOfOrganizationTrailExceeded",
                    "IsOrganizationTrail",
                    "",
                )
            });
        }
    } else if others
        .iter()
        .filter(|o| !o.is_organization_trail && o.home_region == trail.home_region)
        .count()
        >= MAX_TRAILS_PER_REGION
    {
        return Err(err(
            "MaximumNumberOfTrailsExceededException",
            "HomeRegion",
            &trail.home_region,
        ));
    }
    Ok(())
}

/// Apply the given fields of `spec` to `t` (values checked by [`check`] afterwards).
fn apply(t: &mut Trail, spec: TrailSpec) -> Result<(), TrailError> {
    let empty_none = |s: String| (!s.is_empty()).then_some(s);
    if let Some(b) = spec.oss_bucket_name {
        t.oss_bucket_name = empty_none(b);
    }
    if let Some(p) = spec.oss_key_prefix {
        t.oss_key_prefix = empty_none(p);
    }
    if let Some(r) = spec.oss_write_role_arn {
        t.oss_write_role_arn = empty_none(r);
    }
    if let Some(a) = spec.sls_project_arn {
        t.sls_project_arn = empty_none(a);
    }
    if let Some(r) = spec.sls_write_role_arn {
        t.sls_write_role_arn = empty_none(r);
    }
    if let Some(d) = spec.local_directory {
        // Kept absolute, so the same directory named two ways is one bucket.
        let abs = std::path::absolute(&d).unwrap_or(d);
        t.local_directory = empty_none(abs.display().to_string());
    }
    if let Some(rw) = spec.event_rw {
        t.event_rw = EventRw::parse(&rw)?;
    }
    if let Some(r) = spec.trail_region {
        t.trail_region = check_trail_region(&r)?;
    }
    if let Some(o) = spec.is_organization_trail {
        t.is_organization_trail = o;
    }
    if let Some(h) = spec.home_region {
        t.home_region = h;
    }
    if let Some(a) = spec.account_id {
        if !a.is_empty() && !a.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err("InvalidQueryParameter", "AccountId", &a));
        }
        t.account_id = empty_none(a);
    }
    if let Some(i) = spec.insight_enabled {
        t.insight_enabled = i;
    }
    Ok(())
}

/// CreateTrail. The trail starts stopped (as the vendor's: StartLogging starts it).
pub fn create(store: &Store, name: &str, spec: TrailSpec, wait: bool) -> Result<Trail> {
    let _guard = store.lock(wait, |_| {})?;
    let trails = list(store)?;
    let t0 = now();
    let mut trail = Trail {
        name: name.to_owned(),
        home_region: "cn-hangzhou".to_owned(),
        oss_bucket_name: None,
        oss_key_prefix: None,
        oss_write_role_arn: None,
        sls_project_arn: None,
        sls_write_role_arn: None,
        local_directory: None,
        event_rw: EventRw::Write,
        trail_region: "All".to_owned(),
        is_organization_trail: false,
        status: "Disable".to_owned(),
        create_time: t0.clone(),
        update_time: t0,
        start_logging_time: None,
        stop_logging_time: None,
        latest_delivery_time: None,
        latest_delivery_error: None,
        delivered_generation: None,
        account_id: None,
        insight_enabled: false,
    };
    check_name(name)?;
    apply(&mut trail, spec)?;
    check(&trail, &trails)?;
    let mut all = trails;
    all.push(trail.clone());
    save(store, all)?;
    Ok(trail)
}

/// Change one trail with `f`, check it against the others, and save.
fn modify(
    store: &Store,
    name: &str,
    wait: bool,
    f: impl FnOnce(&mut Trail) -> Result<(), TrailError>,
) -> Result<Trail> {
    let _guard = store.lock(wait, |_| {})?;
    let mut trails = list(store)?;
    let i = trails
        .iter()
        .position(|t| t.name == name)
        .ok_or_else(|| err("TrailNotFoundException", "Name", name))?;
    let mut t = trails.remove(i);
    f(&mut t)?;
    t.update_time = now();
    check(&t, &trails)?;
    trails.push(t.clone());
    save(store, trails)?;
    Ok(t)
}

/// UpdateTrail: the fields given change; an empty value clears an optional one.
pub fn update(store: &Store, name: &str, spec: TrailSpec, wait: bool) -> Result<Trail> {
    modify(store, name, wait, |t| apply(t, spec))
}

/// StartLogging.
pub fn start(store: &Store, name: &str, wait: bool) -> Result<Trail> {
    modify(store, name, wait, |t| {
        t.status = "Enable".to_owned();
        t.start_logging_time = Some(now());
        Ok(())
    })
}

/// StopLogging.
pub fn stop(store: &Store, name: &str, wait: bool) -> Result<Trail> {
    modify(store, name, wait, |t| {
        t.status = "Disable".to_owned();
        t.stop_logging_time = Some(now());
        Ok(())
    })
}

/// Record a delivery of `name`: through `generation` when it succeeded, or its error. The
/// caller holds the writer lock (`_guard`) for the whole delivery.
pub fn record_delivery(
    store: &Store,
    _guard: &crate::WriteGuard,
    name: &str,
    generation: Option<u64>,
    error: Option<String>,
) -> Result<()> {
    let mut trails = list(store)?;
    let t = trails
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| err("TrailNotFoundException", "Name", name))?;
    t.latest_delivery_time = Some(now());
    t.latest_delivery_error = error;
    if let Some(g) = generation {
        t.delivered_generation = Some(g);
    }
    save(store, trails)
}

/// DeleteTrail.
pub fn delete(store: &Store, name: &str, wait: bool) -> Result<Trail> {
    let _guard = store.lock(wait, |_| {})?;
    let mut trails = list(store)?;
    let i = trails
        .iter()
        .position(|t| t.name == name)
        .ok_or_else(|| err("TrailNotFoundException", "Name", name))?;
    let t = trails.remove(i);
    save(store, trails)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), TrailError>) -> &'static str {
        r.err().map_or("ok", |e| e.code)
    }

    #[test]
    fn names_at_their_boundaries() {
        let cases = [
            ("abcde", "InvalidTrailNameException"),
            ("abcdef", "ok"),
            (&*"a".repeat(36), "ok"),
            (&*"a".repeat(37), "InvalidTrailNameException"),
            ("1bcdef", "InvalidTrailNameException"),
            ("-bcdef", "InvalidTrailNameException"),
            ("_bcdef", "InvalidTrailNameException"),
            ("Abcdef", "InvalidTrailNameException"),
            ("abc-d_e9", "ok"),
            ("abcdeF", "InvalidTrailNameException"),
            ("abc.def", "InvalidTrailNameException"),
            ("abc/def", "InvalidTrailNameException"),
            ("abc def", "InvalidTrailNameException"),
            ("abcdé", "InvalidTrailNameException"),
        ];
        for (name, want) in cases {
            assert_eq!(code(check_name(name)), want, "{name}");
        }
    }

    #[test]
    fn buckets_at_their_boundaries() {
        let cases = [
            ("ab", "InvalidQueryParameter"),
            ("abc", "ok"),
            ("1bc", "ok"),
            (&*"a".repeat(63), "ok"),
            (&*"a".repeat(64), "InvalidQueryParameter"),
            ("-bc", "InvalidQueryParameter"),
            ("aBc", "InvalidQueryParameter"),
            ("a_c", "InvalidQueryParameter"),
            ("a.c", "InvalidQueryParameter"),
            ("audit-log-2", "ok"),
        ];
        for (b, want) in cases {
            assert_eq!(code(check_bucket(b)), want, "{b}");
        }
    }

    #[test]
    fn prefixes_at_their_boundaries() {
        let cases = [
            ("", "ok"),
            ("abcde", "InvalidPrefixException"),
            ("abcdef", "ok"),
            (&*"a".repeat(32), "ok"),
            (&*"a".repeat(33), "InvalidPrefixException"),
            ("1bcdef", "InvalidPrefixException"),
            ("/bcdef", "InvalidPrefixException"),
            ("Ab-c/d_E9", "ok"),
            ("abc.def", "InvalidPrefixException"),
            ("abc def", "InvalidPrefixException"),
            ("abc\\def", "InvalidPrefixException"),
        ];
        for (p, want) in cases {
            assert_eq!(code(check_prefix(p)), want, "{p}");
        }
    }

    #[test]
    fn regions_and_arns() {
        assert_eq!(code(check_trail_region("All").map(|_| ())), "ok");
        assert_eq!(
            check_trail_region("cn-hangzhou,us-west-1").ok().as_deref(),
            Some("cn-hangzhou,us-west-1")
        );
        assert_eq!(
            code(check_trail_region("cn-hangzhou,mars-1").map(|_| ())),
            "InvalidQueryParameter"
        );
        assert_eq!(
            code(check_trail_region("all").map(|_| ())),
            "InvalidQueryParameter"
        );
        assert_eq!(
            code(check_sls_arn("acs:log:cn-shanghai:123:project/p")),
            "ok"
        );
        assert_eq!(
            code(check_sls_arn("acs:log:cn-shanghai:123:logstore/p")),
            "InvalidQueryParameter"
        );
        assert_eq!(
            code(EventRw::parse("write").map(|_| ())),
            "InvalidQueryParameter"
        );
    }
}
