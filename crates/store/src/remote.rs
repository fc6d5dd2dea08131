//! Buckets: S3 (`s3://bucket/prefix`) and OSS through its S3-compatible API
//! (`oss://bucket/prefix`), reached with `object_store`, for sources to read and for stores
//! that live in a bucket.
//!
//! Credentials come from where users keep them: for S3 the `AWS_*` environment variables
//! (keys, session token, region, endpoint, web identity and container credentials), else the
//! profile `AWS_PROFILE` (or `default`) of `~/.aws/credentials` and `~/.aws/config`, else the
//! instance's role; for OSS `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
//! `ALIBABA_CLOUD_SECURITY_TOKEN` (or their `OSS_*` spellings) and `OSS_ENDPOINT` or
//! `OSS_REGION`. No secret is ever printed. Transient failures (5xx, SlowDown, dropped
//! connections, timeouts) are retried with backoff.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::error::{Result, StoreError};

/// Run `fut` on the bucket runtime and wait for it on this thread. Safe to call from inside
/// another tokio runtime (a query engine's): the wait is on a channel, not a nested runtime.
pub fn block_on<F>(fut: F) -> Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Bucket {
        url: String::new(),
        reason: "the I/O runtime stopped".into(),
    })
}

/// Which API dialect a bucket URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Oss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
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
            return Some(Err(StoreError::Bucket {
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

/// How to reach a bucket.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`, `https://oss-cn-hangzhou.aliyuncs.com`).
    pub endpoint: Option<String>,
    /// The signing region (default: from the environment or the endpoint).
    pub region: Option<String>,
    /// Default: virtual-hosted for AWS and OSS, path style for a custom S3 endpoint.
    pub addressing: Option<Addressing>,
    /// Connections kept open to the server (the most requests expected in flight).
    pub pool: usize,
}

impl ConnectOptions {
    /// Options from the environment: `TRAIL_ENDPOINT`, `TRAIL_REGION` and `TRAIL_ADDRESSING`
    /// (`path` or `virtual`); each unset one falls back as [`Bucket::open`] says.
    pub fn from_env() -> ConnectOptions {
        ConnectOptions {
            endpoint: env(&["TRAIL_ENDPOINT"]),
            region: env(&["TRAIL_REGION"]),
            addressing: env(&["TRAIL_ADDRESSING"]).and_then(|a| match a.as_str() {
                "path" => Some(Addressing::Path),
                "virtual" => Some(Addressing::Virtual),
                _ => None,
            }),
            pool: 16,
        }
    }
}

/// An open bucket.
pub struct Bucket {
    pub url: BucketUrl,
    pub store: Arc<AmazonS3>,
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
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
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
    .map_err(|e| StoreError::Bucket {
        url: String::new(),
        reason: format!("cannot start the I/O runtime: {e}"),
    })
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
    pub fn open(url: BucketUrl, opts: &ConnectOptions) -> Result<Bucket> {
        let client = ClientOptions::new()
            .with_timeout(Duration::from_secs(60))
            .with_connect_timeout(Duration::from_secs(10))
            .with_pool_max_idle_per_host(opts.pool.max(1));
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
        let fail = |reason: String| StoreError::Bucket {
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
    pub fn explain(&self, key: &str, e: &object_store::Error) -> StoreError {
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
        StoreError::Bucket {
            url: self.url.key_url(key),
            reason: what,
        }
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
