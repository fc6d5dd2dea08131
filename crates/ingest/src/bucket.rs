//! Delivery trees read straight from a bucket: S3 (`s3://bucket/prefix`) and OSS through its
//! S3-compatible API (`oss://bucket/prefix`), with `object_store`.
//!
//! * **Credentials** come from where users keep them: for S3 the `AWS_*` environment variables
//!   (keys, session token, region, endpoint, web identity and container credentials), else the
//!   profile `AWS_PROFILE` (or `default`) of `~/.aws/credentials` and `~/.aws/config`, else the
//!   instance's role; for OSS `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
//!   `ALIBABA_CLOUD_SECURITY_TOKEN` (or their `OSS_*` spellings) and `OSS_ENDPOINT` or
//!   `OSS_REGION`. No secret is ever printed.
//! * **Listing** follows the delivery layout: under a *date root* (the folder holding the
//!   `<YYYY>/<MM>/<DD>/` folders, one per region and account) a later run lists only the days
//!   from the last one it listed (less a look-back for late deliveries), so the LIST calls grow
//!   with the new days, not with the bucket's history. Digest and insight folders are never
//!   listed.
//! * **Reading** keeps a bounded number of GETs in flight. Transient failures (5xx, SlowDown,
//!   dropped connections, timeouts) are retried with backoff by `object_store`, and a body cut
//!   short is fetched again here; a permanent one (403, a missing bucket) stops the ingest with
//!   the bucket and key named, before anything is committed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use trail_store::ledger::Ledger;

use crate::error::{IngestError, Result};
use crate::source::{SkipReason, Skipped};

/// Which API dialect a bucket URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Oss,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Oss => "oss",
        }
    }
}

/// A bucket and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub scheme: Scheme,
    pub bucket: String,
    /// Key prefix: empty, or ending with `/`.
    pub prefix: String,
}

impl BucketUrl {
    /// Parse `s3://bucket[/prefix]` or `oss://bucket[/prefix]`; `None` if `s` names no bucket.
    pub fn parse(s: &str) -> Option<Result<Self>> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("s3://") {
            (Scheme::S3, r)
        } else if let Some(r) = s.strip_prefix("oss://") {
            (Scheme::Oss, r)
        } else {
            return None;
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Some(Err(IngestError::Bucket {
                url: s.to_owned(),
                reason: format!(
                    "`{bucket}` is not a bucket name (3-63 lowercase letters, digits, `-` and `.`)"
                ),
            }));
        }
        let prefix = prefix.trim_matches('/');
        Some(Ok(BucketUrl {
            scheme,
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }))
    }

    /// The URL of a key in this bucket.
    pub fn key_url(&self, key: &str) -> String {
        format!("{}://{}/{key}", self.scheme.as_str(), self.bucket)
    }
}

impl fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/{}",
            self.scheme.as_str(),
            self.bucket,
            self.prefix
        )
    }
}

/// How requests are addressed: `https://host/bucket/key` or `https://bucket.host/key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    Path,
    Virtual,
}

/// How to reach buckets.
#[derive(Debug, Clone)]
pub struct BucketOptions {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`, `https://oss-cn-hangzhou.aliyuncs.com`).
    pub endpoint: Option<String>,
    /// The signing region (default: from the environment or the endpoint).
    pub region: Option<String>,
    /// Default: virtual-hosted for AWS and OSS, path style for a custom S3 endpoint.
    pub addressing: Option<Addressing>,
    /// GET requests in flight.
    pub concurrency: usize,
    /// Days before the last listed day that a later run lists again (late deliveries).
    pub lookback_days: u32,
}

impl Default for BucketOptions {
    fn default() -> Self {
        BucketOptions {
            endpoint: None,
            region: None,
            addressing: None,
            concurrency: 32,
            lookback_days: 1,
        }
    }
}

/// An open bucket.
pub struct Bucket {
    pub url: BucketUrl,
    store: Arc<AmazonS3>,
    /// Where requests go, for messages (never carries a secret).
    endpoint: String,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("url", &self.url.to_string())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The runtime that bucket requests run on (two I/O threads; the decoding is elsewhere).
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trail-bucket-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| IngestError::Internal(format!("cannot start the I/O runtime: {e}")))
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// The `[section]`s of an INI file (`~/.aws/credentials`, `~/.aws/config`) as key/value maps.
fn ini_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            out.entry(name.trim().to_owned()).or_default();
        } else if let (Some(sec), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

/// Keys, token and region of an AWS shared-config profile.
#[derive(Debug, Default, PartialEq, Eq)]
struct Profile {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    region: Option<String>,
}

fn aws_profile() -> Option<Profile> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let creds = env(&["AWS_SHARED_CREDENTIALS_FILE"])
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = env(&["AWS_CONFIG_FILE"])
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let name = env(&["AWS_PROFILE"]).unwrap_or_else(|| "default".to_owned());
    let read = |p: Option<std::path::PathBuf>| {
        p.and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| ini_sections(&t))
            .unwrap_or_default()
    };
    let creds = read(creds);
    let config = read(config);
    let in_creds = creds.get(&name);
    // In `config` a named profile's section is `[profile NAME]`; the default is `[default]`.
    let in_config = config
        .get(&format!("profile {name}"))
        .or_else(|| config.get(&name));
    let get = |k: &str| {
        in_creds
            .and_then(|s| s.get(k))
            .or_else(|| in_config.and_then(|s| s.get(k)))
            .cloned()
    };
    let p = Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: in_config.and_then(|s| s.get("region")).cloned(),
    };
    (p != Profile::default()).then_some(p)
}

/// `http://host:port` with the bucket as the first label of the host.
fn virtual_host(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{}", host.trim_end_matches('/')),
        None => format!("https://{bucket}.{}", endpoint.trim_end_matches('/')),
    }
}

impl Bucket {
    /// Open `url` with credentials from the environment (see the module's documentation).
    pub fn open(url: BucketUrl, opts: &BucketOptions) -> Result<Bucket> {
        let client = ClientOptions::new()
            .with_timeout(Duration::from_secs(60))
            .with_connect_timeout(Duration::from_secs(10))
            .with_pool_max_idle_per_host(opts.concurrency.max(1));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 8,
            retry_timeout: Duration::from_secs(60),
        };
        let mut b = AmazonS3Builder::new()
            .with_client_options(client)
            .with_retry(retry)
            .with_bucket_name(&url.bucket);
        let fail = |reason: String| IngestError::Bucket {
            url: url.to_string(),
            reason,
        };
        let (endpoint, region, addressing) = match url.scheme {
            Scheme::S3 => {
                // Everything `AWS_*` that object_store knows, as `AmazonS3Builder::from_env`.
                for (k, v) in std::env::vars() {
                    if k.starts_with("AWS_")
                        && let Ok(key) = k.to_ascii_lowercase().parse()
                    {
                        b = b.with_config(key, v);
                    }
                }
                let region_env = env(&["AWS_REGION", "AWS_DEFAULT_REGION"]);
                let mut region = opts.region.clone().or(region_env);
                if env(&["AWS_ACCESS_KEY_ID"]).is_none()
                    && let Some(p) = aws_profile()
                {
                    if let (Some(id), Some(secret)) = (p.access_key_id, p.secret_access_key) {
                        b = b.with_access_key_id(id).with_secret_access_key(secret);
                        if let Some(t) = p.session_token {
                            b = b.with_token(t);
                        }
                    }
                    region = region.or(p.region);
                }
                let endpoint = opts
                    .endpoint
                    .clone()
                    .or_else(|| env(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]));
                let addressing = opts.addressing.unwrap_or(if endpoint.is_some() {
                    Addressing::Path
                } else {
                    Addressing::Virtual
                });
                (
                    endpoint,
                    region.unwrap_or_else(|| "us-east-1".into()),
                    addressing,
                )
            }
            Scheme::Oss => {
                let id = env(&["ALIBABA_CLOUD_ACCESS_KEY_ID", "OSS_ACCESS_KEY_ID"]);
                let secret = env(&["ALIBABA_CLOUD_ACCESS_KEY_SECRET", "OSS_ACCESS_KEY_SECRET"]);
                match (id, secret) {
                    (Some(id), Some(secret)) => {
                        b = b.with_access_key_id(id).with_secret_access_key(secret);
                    }
                    _ => {
                        return Err(fail(
                            "no OSS credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and \
                             ALIBABA_CLOUD_ACCESS_KEY_SECRET"
                                .into(),
                        ));
                    }
                }
                if let Some(t) = env(&["ALIBABA_CLOUD_SECURITY_TOKEN", "OSS_SESSION_TOKEN"]) {
                    b = b.with_token(t);
                }
                let oss_region = opts
                    .region
                    .clone()
                    .or_else(|| env(&["OSS_REGION", "ALIBABA_CLOUD_REGION_ID"]));
                let endpoint = opts
                    .endpoint
                    .clone()
                    .or_else(|| env(&["OSS_ENDPOINT"]))
                    .or_else(|| {
                        oss_region
                            .as_ref()
                            .map(|r| format!("oss-{}.aliyuncs.com", r.trim_start_matches("oss-")))
                    })
                    .ok_or_else(|| {
                        fail(
                            "no OSS endpoint: set OSS_ENDPOINT (e.g. oss-cn-hangzhou.aliyuncs.com), \
                             OSS_REGION, or pass --endpoint"
                                .into(),
                        )
                    })?;
                let endpoint = if endpoint.contains("://") {
                    endpoint
                } else {
                    format!("https://{endpoint}")
                };
                // The signing region is the endpoint's: `oss-cn-hangzhou.aliyuncs.com` signs as
                // `cn-hangzhou`.
                let region = oss_region
                    .map(|r| r.trim_start_matches("oss-").to_owned())
                    .or_else(|| {
                        let host = endpoint.split_once("://").map_or(&*endpoint, |x| x.1);
                        host.split('.')
                            .next()
                            .and_then(|h| h.strip_prefix("oss-"))
                            .map(|r| r.trim_end_matches("-internal").to_owned())
                    })
                    .unwrap_or_else(|| "cn-hangzhou".into());
                let addressing = opts.addressing.unwrap_or(Addressing::Virtual);
                (Some(endpoint), region, addressing)
            }
        };
        b = b.with_region(&region);
        let shown_endpoint = match &endpoint {
            Some(e) => {
                let e = if addressing == Addressing::Virtual {
                    virtual_host(e, &url.bucket)
                } else {
                    e.clone()
                };
                b = b
                    .with_endpoint(&e)
                    .with_allow_http(e.starts_with("http://"));
                e
            }
            None if addressing == Addressing::Virtual => {
                format!("https://{}.s3.{region}.amazonaws.com", url.bucket)
            }
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        b = b.with_virtual_hosted_style_request(addressing == Addressing::Virtual);
        let store = b.build().map_err(|e| fail(e.to_string()))?;
        Ok(Bucket {
            url,
            store: Arc::new(store),
            endpoint: shown_endpoint,
        })
    }

    /// A one-line explanation of a failed request on `key`, with what to check.
    fn explain(&self, key: &str, e: &object_store::Error) -> IngestError {
        let text = e.to_string();
        let code = [
            "NoSuchBucket",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .into_iter()
        .find(|c| text.contains(&format!("<Code>{c}</Code>")) || text.contains(c));
        let denied = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || code.is_some_and(|c| c != "NoSuchBucket")
            || text.contains("403 Forbidden")
            || text.contains("401 Unauthorized");
        let what = if code == Some("NoSuchBucket") {
            format!(
                "the bucket `{}` does not exist at {} (check its name, the region and the \
                 endpoint)",
                self.url.bucket, self.endpoint
            )
        } else if denied {
            let hint = match self.url.scheme {
                Scheme::S3 => "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
                Scheme::Oss => "ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            };
            format!(
                "{}: the credentials may not read it (check {hint}, and the bucket's policy)",
                code.unwrap_or("access denied")
            )
        } else if matches!(e, object_store::Error::NotFound { .. }) {
            format!("not found at {}", self.endpoint)
        } else {
            // The server's XML body says no more than its status; keep the line short.
            let head = text.split(": <?xml").next().unwrap_or(&text);
            let head: String = head.chars().take(300).collect();
            format!("{head} (transient failures were retried)")
        };
        IngestError::Bucket {
            url: self.url.key_url(key),
            reason: what,
        }
    }
}

/// One object to read.
#[derive(Debug, Clone)]
pub struct ObjectInput {
    pub bucket: Arc<Bucket>,
    pub key: ObjectPath,
    pub size: u64,
    pub etag: Option<String>,
}

impl PartialEq for ObjectInput {
    fn eq(&self, other: &Self) -> bool {
        self.bucket.url == other.bucket.url && self.key == other.key
    }
}
impl Eq for ObjectInput {}

impl ObjectInput {
    /// The object's URL, as messages name it.
    pub fn url(&self) -> String {
        self.bucket.url.key_url(self.key.as_ref())
    }
}

/// A listing of a bucket source.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects that look like event files, sorted by key.
    pub objects: Vec<object_store::ObjectMeta>,
    pub skipped: Vec<Skipped>,
    /// LIST requests made (each returns up to 1,000 keys; more pages are more requests).
    pub list_calls: u64,
    /// Day folders listed.
    pub days_listed: u64,
    /// Per date root (relative to the source prefix), the newest day listed.
    pub newest_day: BTreeMap<String, NaiveDate>,
}

fn is_year(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> Option<u32> {
    (s.len() <= 2 && !s.is_empty())
        .then(|| s.parse().ok())
        .flatten()
}

fn last_segment(p: &ObjectPath) -> String {
    p.filename().unwrap_or_default().to_owned()
}

impl Bucket {
    fn prefix_path(&self) -> Option<ObjectPath> {
        let p = self.url.prefix.trim_end_matches('/');
        (!p.is_empty()).then(|| ObjectPath::from(p))
    }

    /// The key relative to the source prefix (what the ledger records).
    pub fn relative<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(&self.url.prefix).unwrap_or(key)
    }

    async fn list_dir(
        &self,
        prefix: Option<&ObjectPath>,
        calls: &mut u64,
    ) -> Result<object_store::ListResult> {
        *calls += 1;
        self.store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.explain(prefix.map_or("", |p| p.as_ref()), &e))
    }

    /// List the source, from each date root's last listed day on (less the look-back) unless
    /// `full`.
    pub async fn list(&self, ledger: &Ledger, full: bool, lookback_days: u32) -> Result<Listing> {
        let mut out = Listing::default();
        let mut calls = 0u64;
        let mut pending: Vec<Option<ObjectPath>> = vec![self.prefix_path()];
        // Folders whose objects are listed flat (a day, or anything outside the date layout
        // below a date root), with the date root and day they belong to.
        let mut flat: Vec<(ObjectPath, Option<(String, NaiveDate)>)> = Vec::new();
        let mut objects = Vec::new();
        while let Some(prefix) = pending.pop() {
            let res = self.list_dir(prefix.as_ref(), &mut calls).await?;
            objects.extend(res.objects);
            let (years, others): (Vec<_>, Vec<_>) = res
                .common_prefixes
                .into_iter()
                .partition(|p| is_year(&last_segment(p)));
            for p in others {
                match crate::source::classify(std::path::Path::new(p.as_ref())) {
                    Some(reason) => out.skipped.push(Skipped {
                        path: self.url.key_url(&format!("{p}/")),
                        reason,
                    }),
                    None => pending.push(Some(p)),
                }
            }
            if years.is_empty() {
                continue;
            }
            let root = prefix.as_ref().map_or(String::new(), |p| format!("{p}/"));
            let root_rel = self.relative(&root).to_owned();
            let since = if full {
                None
            } else {
                ledger
                    .days
                    .get(&root_rel)
                    .map(|d| *d - chrono::Days::new(u64::from(lookback_days)))
            };
            for year_p in years {
                let Ok(year) = last_segment(&year_p).parse::<i32>() else {
                    continue;
                };
                if since.is_some_and(|s| year < s.year()) {
                    continue;
                }
                let months = self.list_dir(Some(&year_p), &mut calls).await?;
                objects.extend(months.objects);
                for month_p in months.common_prefixes {
                    let Some(month) = num(&last_segment(&month_p)) else {
                        flat.push((month_p, None));
                        continue;
                    };
                    if since.is_some_and(|s| (year, month) < (s.year(), s.month())) {
                        continue;
                    }
                    let days = self.list_dir(Some(&month_p), &mut calls).await?;
                    objects.extend(days.objects);
                    for day_p in days.common_prefixes {
                        let date = num(&last_segment(&day_p))
                            .and_then(|d| NaiveDate::from_ymd_opt(year, month, d));
                        match date {
                            Some(date) if since.is_some_and(|s| date < s) => {}
                            Some(date) => flat.push((day_p, Some((root_rel.clone(), date)))),
                            None => flat.push((day_p, None)),
                        }
                    }
                }
            }
        }
        out.days_listed = flat.iter().filter(|(_, d)| d.is_some()).count() as u64;
        // The day folders are listed side by side.
        let listed: Vec<Result<(Vec<object_store::ObjectMeta>, u64)>> =
            futures::stream::iter(flat.iter().map(|(p, _)| async move {
                let found: Vec<object_store::ObjectMeta> = self
                    .store
                    .list(Some(p))
                    .try_collect()
                    .await
                    .map_err(|e| self.explain(p.as_ref(), &e))?;
                // A page holds up to 1,000 keys.
                let pages = (found.len() as u64).div_ceil(1000).max(1);
                Ok((found, pages))
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        for r in listed {
            let (found, pages) = r?;
            calls += pages;
            objects.extend(found);
        }
        for (_, day) in &flat {
            if let Some((root, date)) = day {
                let e = out.newest_day.entry(root.clone()).or_insert(*date);
                *e = (*e).max(*date);
            }
        }
        for o in objects {
            let key = o.location.as_ref();
            let path = std::path::Path::new(key);
            if let Some(reason) = crate::source::classify(path) {
                out.skipped.push(Skipped {
                    path: self.url.key_url(key),
                    reason,
                });
            } else if crate::source::is_event_name(path) {
                out.objects.push(o);
            } else {
                out.skipped.push(Skipped {
                    path: self.url.key_url(key),
                    reason: SkipReason::NotEvents,
                });
            }
        }
        out.objects.sort_by(|a, b| a.location.cmp(&b.location));
        out.objects.dedup_by(|a, b| a.location == b.location);
        out.list_calls = calls;
        Ok(out)
    }
}

/// What a GET brought.
pub(crate) enum Fetched {
    /// The whole object.
    Whole(Vec<u8>),
    /// A large object, to be read as a stream.
    Stream(BoxStream<'static, object_store::Result<bytes::Bytes>>),
}

impl ObjectInput {
    /// GET the object: whole if it is at most `whole_max` bytes, else as a stream. A body cut
    /// short is fetched again (the request itself is retried by `object_store`).
    pub(crate) async fn fetch(&self, whole_max: u64) -> Result<Fetched> {
        let mut attempt = 0u32;
        loop {
            let r: object_store::Result<Fetched> = async {
                let got = self.bucket.store.get(&self.key).await?;
                if self.size > whole_max {
                    return Ok(Fetched::Stream(got.into_stream()));
                }
                Ok(Fetched::Whole(got.bytes().await?.into()))
            }
            .await;
            match r {
                Ok(f) => return Ok(f),
                Err(
                    e @ (object_store::Error::NotFound { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }),
                ) => return Err(self.bucket.explain(self.key.as_ref(), &e)),
                Err(e) if attempt >= 4 => {
                    return Err(self.bucket.explain(self.key.as_ref(), &e));
                }
                Err(e) => {
                    attempt += 1;
                    tracing::debug!("retrying {}: {e}", self.url());
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }
}

/// A blocking `Read` over an object's byte stream (for objects too large to hold whole).
pub(crate) struct StreamReader {
    stream: BoxStream<'static, object_store::Result<bytes::Bytes>>,
    current: bytes::Bytes,
    handle: tokio::runtime::Handle,
}

impl StreamReader {
    pub(crate) fn new(
        stream: BoxStream<'static, object_store::Result<bytes::Bytes>>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        StreamReader {
            stream,
            current: bytes::Bytes::new(),
            handle,
        }
    }
}

impl std::io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_parse() {
        let u = BucketUrl::parse("s3://my-trail/AWSLogs/o-1/")
            .unwrap()
            .unwrap();
        assert_eq!(u.scheme, Scheme::S3);
        assert_eq!(u.bucket, "my-trail");
        assert_eq!(u.prefix, "AWSLogs/o-1/");
        assert_eq!(u.to_string(), "s3://my-trail/AWSLogs/o-1/");
        let u = BucketUrl::parse("oss://audit").unwrap().unwrap();
        assert_eq!((u.scheme, u.prefix.as_str()), (Scheme::Oss, ""));
        assert!(BucketUrl::parse("/tmp/x").is_none());
        let e = BucketUrl::parse("s3://Bad_Bucket/x").unwrap().unwrap_err();
        assert!(e.to_string().contains("not a bucket name"), "{e}");
    }

    #[test]
    fn shared_config_profiles_are_read() {
        let creds = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n[ops]\n\
                     aws_access_key_id=B\naws_secret_access_key=T\naws_session_token = X\n";
        let s = ini_sections(creds);
        assert_eq!(s["ops"]["aws_session_token"], "X");
        assert_eq!(s["default"]["aws_access_key_id"], "A");
        let config = "# comment\n[profile ops]\nregion = eu-west-1\n";
        assert_eq!(ini_sections(config)["profile ops"]["region"], "eu-west-1");
    }

    #[test]
    fn virtual_hosts_put_the_bucket_first() {
        assert_eq!(
            virtual_host("http://localhost:9000/", "b"),
            "http://b.localhost:9000"
        );
        assert_eq!(
            virtual_host("oss-cn-hangzhou.aliyuncs.com", "b"),
            "https://b.oss-cn-hangzhou.aliyuncs.com"
        );
    }
}
