//! `trail-gen`: a deterministic generator of realistic ActionTrail events.
//!
//! It writes a delivery tree as ActionTrail does (`AliyunLogs/Actiontrail/<region>/<YYYY>/<MM>/<DD>/`,
//! one gzip file per region per 5 minutes) with:
//! * Zipf-distributed identities over several accounts, each with one to three usual source IPs,
//!   a usual user agent (SDK or console) and, rarely, an unusual IP;
//! * Zipf-distributed event names over many services, with `eventRW`, nested
//!   `requestParameters` of mixed types, response elements and referenced resources;
//! * a few percent of failed calls with real error codes; console sign-ins with and without MFA;
//! * about 1.2 KB per event.
//!
//! The same [`GenConfig`] always produces the same bytes: every (region, day) has its own seeded
//! random stream.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let cfg = trail_gen::GenConfig { events: 500, days: 2, regions: 2, ..Default::default() };
//! let stats = trail_gen::generate(&cfg, dir.path()).unwrap();
//! assert_eq!(stats.events, 500);
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde_json::{Value, json};

/// Regions in the order they are used; weights fall off with the index.
pub const REGIONS: [&str; 16] = [
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-zhangjiakou",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-5",
    "ap-northeast-1",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
    "eu-west-1",
    "me-east-1",
    "ap-south-1",
];

/// (service, eventSource prefix, event name, apiVersion, resourceType)
const EVENTS: [(&str, &str, &str, &str, &str); 40] = [
    (
        "Ecs",
        "ecs",
        "DescribeInstances",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    ("Ecs", "ecs", "DescribeRegions", "2014-05-26", ""),
    (
        "Oss",
        "oss",
        "GetBucketInfo",
        "2019-05-17",
        "ACS::OSS::Bucket",
    ),
    ("Ram", "ram", "ListUsers", "2015-05-01", "ACS::RAM::User"),
    (
        "Ecs",
        "ecs",
        "DescribeSecurityGroups",
        "2014-05-26",
        "ACS::ECS::SecurityGroup",
    ),
    (
        "Slb",
        "slb",
        "DescribeLoadBalancers",
        "2014-05-15",
        "ACS::SLB::LoadBalancer",
    ),
    (
        "Rds",
        "rds",
        "DescribeDBInstances",
        "2014-08-15",
        "ACS::RDS::DBInstance",
    ),
    (
        "Ecs",
        "ecs",
        "StartInstance",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    (
        "Ecs",
        "ecs",
        "StopInstance",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    (
        "Oss",
        "oss",
        "PutBucketAcl",
        "2019-05-17",
        "ACS::OSS::Bucket",
    ),
    ("Ram", "ram", "GetUser", "2015-05-01", "ACS::RAM::User"),
    ("Sts", "sts", "AssumeRole", "2015-04-01", "ACS::RAM::Role"),
    (
        "Ecs",
        "ecs",
        "CreateInstance",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    (
        "Ecs",
        "ecs",
        "DeleteInstance",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    ("Vpc", "vpc", "DescribeVpcs", "2016-04-28", "ACS::VPC::VPC"),
    ("Kms", "kms", "Decrypt", "2016-01-20", "ACS::KMS::Key"),
    (
        "Ecs",
        "ecs",
        "AuthorizeSecurityGroup",
        "2014-05-26",
        "ACS::ECS::SecurityGroup",
    ),
    (
        "Ram",
        "ram",
        "CreateAccessKey",
        "2015-05-01",
        "ACS::RAM::User",
    ),
    (
        "Ram",
        "ram",
        "AttachPolicyToUser",
        "2015-05-01",
        "ACS::RAM::User",
    ),
    ("Ims", "ims", "ConsoleSignin", "2019-08-15", ""),
    ("Oss", "oss", "PutBucket", "2019-05-17", "ACS::OSS::Bucket"),
    (
        "Oss",
        "oss",
        "DeleteBucket",
        "2019-05-17",
        "ACS::OSS::Bucket",
    ),
    (
        "Actiontrail",
        "actiontrail",
        "LookupEvents",
        "2020-07-06",
        "",
    ),
    (
        "Ecs",
        "ecs",
        "ModifyInstanceAttribute",
        "2014-05-26",
        "ACS::ECS::Instance",
    ),
    (
        "Ram",
        "ram",
        "DeleteAccessKey",
        "2015-05-01",
        "ACS::RAM::User",
    ),
    (
        "Ram",
        "ram",
        "UpdateAccessKey",
        "2015-05-01",
        "ACS::RAM::User",
    ),
    ("Ram", "ram", "CreateUser", "2015-05-01", "ACS::RAM::User"),
    ("Ram", "ram", "DeleteUser", "2015-05-01", "ACS::RAM::User"),
    ("Ram", "ram", "SetPasswordPolicy", "2015-05-01", ""),
    (
        "Ims",
        "ims",
        "UnbindMFADevice",
        "2019-08-15",
        "ACS::RAM::User",
    ),
    (
        "Actiontrail",
        "actiontrail",
        "StopLogging",
        "2020-07-06",
        "ACS::ActionTrail::Trail",
    ),
    (
        "Actiontrail",
        "actiontrail",
        "DeleteTrail",
        "2020-07-06",
        "ACS::ActionTrail::Trail",
    ),
    (
        "Actiontrail",
        "actiontrail",
        "UpdateTrail",
        "2020-07-06",
        "ACS::ActionTrail::Trail",
    ),
    (
        "Ram",
        "ram",
        "AttachPolicyToRole",
        "2015-05-01",
        "ACS::RAM::Role",
    ),
    (
        "Ecs",
        "ecs",
        "DescribeDisks",
        "2014-05-26",
        "ACS::ECS::Disk",
    ),
    (
        "Ecs",
        "ecs",
        "DeleteSecurityGroup",
        "2014-05-26",
        "ACS::ECS::SecurityGroup",
    ),
    (
        "Rds",
        "rds",
        "ModifySecurityIps",
        "2014-08-15",
        "ACS::RDS::DBInstance",
    ),
    (
        "Ecs",
        "ecs",
        "DescribeImages",
        "2014-05-26",
        "ACS::ECS::Image",
    ),
    ("Ecs", "ecs", "ListTagResources", "2014-05-26", ""),
    (
        "Ram",
        "ram",
        "ListPolicies",
        "2015-05-01",
        "ACS::RAM::Policy",
    ),
];

const ERROR_CODES: [(&str, &str); 6] = [
    (
        "Forbidden.RAM",
        "User not authorized to operate on the specified resource.",
    ),
    (
        "InvalidAccessKeyId.NotFound",
        "Specified access key is not found.",
    ),
    (
        "Throttling.User",
        "Request was denied due to user flow control.",
    ),
    ("InvalidParameter", "The specified parameter is not valid."),
    (
        "IncorrectInstanceStatus",
        "The current status of the resource does not support this operation.",
    ),
    (
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation.",
    ),
];

const AGENTS: [&str; 5] = [
    "AlibabaCloud (Linux 5.10; x86_64) Python/3.11 Core/2.13.36 python-sdk",
    "aliyun-cli/3.0.190 (darwin; arm64)",
    "Terraform/1.6.4 terraform-provider-alicloud/1.214.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "AlibabaCloud Java SDK/4.6.3 (JDK 17)",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub seed: u64,
    /// Total events (exactly this many are written).
    pub events: u64,
    pub days: u32,
    /// Regions used, up to 16.
    pub regions: usize,
    pub accounts: usize,
    /// Identities across all accounts.
    pub identities: usize,
    pub start: NaiveDate,
    /// Share of failed calls.
    pub error_rate: f64,
    /// Share of calls from an identity's rare IP.
    pub rare_ip_rate: f64,
    /// Events per delivered file are those of one region in this many minutes.
    pub file_minutes: i64,
    pub format: FileFormat,
}

/// How events are laid out in a delivered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A JSON array of events.
    Array,
    /// One event per line.
    Ndjson,
    /// `{"Records": [...]}`.
    Records,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            events: 10_000,
            days: 30,
            regions: 16,
            accounts: 8,
            identities: 400,
            start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default(),
            error_rate: 0.03,
            rare_ip_rate: 0.01,
            file_minutes: 5,
            format: FileFormat::Array,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    pub events: u64,
    pub files: u64,
    pub bytes_uncompressed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid generator setting: {0}")]
    Config(String),
}

/// One identity of the generated world.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account: String,
    pub kind: &'static str,
    pub principal_id: String,
    pub user_name: String,
    pub access_key_id: String,
    pub usual_ips: Vec<String>,
    pub rare_ip: String,
    pub agent: &'static str,
    pub mfa: bool,
}

fn ip(rng: &mut impl Rng) -> String {
    // Public-looking addresses from a few providers' blocks.
    let firsts = [47u8, 42, 101, 106, 116, 120, 139, 203, 198, 8];
    format!(
        "{}.{}.{}.{}",
        firsts[rng.random_range(0..firsts.len())],
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// The identities of a configuration (the same for every region and day).
pub fn identities(cfg: &GenConfig) -> Vec<Identity> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x1d3_7f1e5);
    let accounts: Vec<String> = (0..cfg.accounts.max(1))
        .map(|_| format!("1{:015}", rng.random_range(0..1_000_000_000_000_000u64)))
        .collect();
    (0..cfg.identities.max(1))
        .map(|i| {
            let account = accounts[i % accounts.len()].clone();
            let (kind, user_name) = if i < accounts.len() {
                ("root-account", "root".to_owned())
            } else if i % 7 == 0 {
                ("assumed-role", format!("role-{i}"))
            } else {
                ("ram-user", format!("user{i:04}"))
            };
            let n_ips = 1 + (i % 3);
            Identity {
                principal_id: format!("2{:015}", rng.random_range(0..1_000_000_000_000_000u64)),
                access_key_id: format!("LTAI{:016X}", rng.random::<u64>()),
                usual_ips: (0..n_ips).map(|_| ip(&mut rng)).collect(),
                rare_ip: ip(&mut rng),
                agent: AGENTS[rng.random_range(0..AGENTS.len())],
                mfa: rng.random_bool(0.6),
                account,
                kind,
                user_name,
            }
        })
        .collect()
}

fn uuid(rng: &mut impl Rng) -> String {
    let v: u128 = rng.random();
    let h = format!("{v:032X}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Render one event.
fn event(
    rng: &mut ChaCha8Rng,
    cfg: &GenConfig,
    ids: &[Identity],
    id_zipf: &Zipf<f64>,
    ev_zipf: &Zipf<f64>,
    region: &str,
    time: DateTime<Utc>,
) -> Value {
    let who = &ids[(id_zipf.sample(rng) as usize - 1).min(ids.len() - 1)];
    let (service, src, name, api, rtype) =
        EVENTS[(ev_zipf.sample(rng) as usize - 1).min(EVENTS.len() - 1)];
    let read = ["Describe", "List", "Get", "Lookup"]
        .iter()
        .any(|p| name.starts_with(p));
    let source_ip = if rng.random_bool(cfg.rare_ip_rate) {
        who.rare_ip.clone()
    } else if rng.random_bool(0.02) {
        "Internal".to_owned()
    } else {
        who.usual_ips[rng.random_range(0..who.usual_ips.len())].clone()
    };
    let request_id = uuid(rng);
    let resource = format!(
        "{}-{:x}",
        &src[..2.min(src.len())],
        rng.random::<u64>() >> 8
    );
    let env = ["prod", "dev", "test"][rng.random_range(0..3)];
    let status = ["Running", "Stopped"][rng.random_range(0..2)];
    let mut e = json!({
        "eventId": uuid(rng),
        "eventVersion": 1,
        "eventSource": format!("{src}.{region}.aliyuncs.com"),
        "eventName": name,
        "eventType": if name == "ConsoleSignin" { "ConsoleSignin" } else { "ApiCall" },
        "eventCategory": "Management",
        "eventRW": if read { "Read" } else { "Write" },
        "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "acsRegion": region,
        "serviceName": service,
        "apiVersion": api,
        "requestId": request_id,
        "isGlobal": matches!(service, "Ram" | "Ims" | "Sts"),
        "sourceIpAddress": source_ip,
        "userAgent": who.agent,
        "userIdentity": {
            "type": who.kind,
            "principalId": who.principal_id,
            "accountId": who.account,
            "accessKeyId": who.access_key_id,
            "userName": who.user_name,
            "sessionContext": {"attributes": {
                "mfaAuthenticated": if who.mfa { "true" } else { "false" },
                "creationDate": (time - Duration::minutes(rng.random_range(1..600))).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }}
        },
        "requestParameters": {
            "RegionId": region,
            "PageSize": rng.random_range(10..100),
            "PageNumber": 1,
            "ResourceId": resource,
            "Tag": [{"Key": "env", "Value": env}, {"Key": "owner", "Value": who.user_name}],
            "Filter": {"Status": status, "DryRun": rng.random_bool(0.1), "Score": rng.random_range(0.0..1.0)},
            "AcsHost": format!("{src}.aliyuncs.com"),
            "RequestId": request_id,
        },
        "additionalEventData": {"Scheme": "https", "CallerBizId": rng.random_range(1000..9999)},
        "referencedResources": if rtype.is_empty() { Value::Null } else { json!({ rtype: [resource] }) },
        "resourceType": if rtype.is_empty() { Value::Null } else { rtype.into() },
        "resourceName": if rtype.is_empty() { Value::Null } else { resource.clone().into() },
        "recipientAccountId": who.account,
    });
    if rng.random_bool(cfg.error_rate) {
        let (code, msg) = ERROR_CODES[rng.random_range(0..ERROR_CODES.len())];
        e["errorCode"] = code.into();
        e["errorMessage"] = msg.into();
        e["responseElements"] = json!({"RequestId": request_id});
    } else {
        e["responseElements"] = json!({"RequestId": request_id, "Success": true, "TotalCount": rng.random_range(0..500)});
    }
    if name == "ConsoleSignin" {
        e["additionalEventData"] = json!({"MFAUsed": if who.mfa { "true" } else { "false" }, "LoginTo": "https://home.console.aliyun.com/"});
    }
    e
}

fn seed_for(cfg: &GenConfig, region: usize, day: u32) -> u64 {
    cfg.seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((region as u64) << 32 | day as u64)
}

/// How many events land in each (region, day): region weights fall as 1/(i+1), split evenly
/// over days, and the remainder spread so the total is exact.
fn counts(cfg: &GenConfig) -> Vec<Vec<u64>> {
    let regions = cfg.regions.clamp(1, REGIONS.len());
    let w: Vec<f64> = (0..regions).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total_w: f64 = w.iter().sum();
    let cells = regions * cfg.days.max(1) as usize;
    let mut out = vec![vec![0u64; cfg.days.max(1) as usize]; regions];
    let mut assigned = 0u64;
    for (row, wr) in out.iter_mut().zip(&w) {
        let n = (cfg.events as f64 * wr / total_w / cfg.days.max(1) as f64).floor() as u64;
        for cell in row.iter_mut() {
            *cell = n;
            assigned += n;
        }
    }
    let mut i = 0usize;
    while assigned < cfg.events {
        out[i % regions][(i / regions) % cfg.days.max(1) as usize] += 1;
        assigned += 1;
        i = (i + 1) % cells;
    }
    out
}

/// Write the delivery tree for `cfg` under `out`.
pub fn generate(cfg: &GenConfig, out: &Path) -> Result<GenStats, GenError> {
    if cfg.identities == 0 || cfg.days == 0 {
        return Err(GenError::Config(
            "identities and days must be positive".into(),
        ));
    }
    let ids = identities(cfg);
    let id_zipf = Zipf::new(ids.len() as f64, 1.1).map_err(|e| GenError::Config(e.to_string()))?;
    let ev_zipf =
        Zipf::new(EVENTS.len() as f64, 1.2).map_err(|e| GenError::Config(e.to_string()))?;
    let mut stats = GenStats::default();
    for (r, per_day) in counts(cfg).iter().enumerate() {
        let region = REGIONS[r];
        for (d, &n) in per_day.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed_for(cfg, r, d as u32));
            let day = cfg.start + Duration::days(d as i64);
            let midnight = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
            let mut secs: Vec<i64> = (0..n).map(|_| rng.random_range(0..86_400)).collect();
            secs.sort_unstable();
            let dir = out.join(format!(
                "AliyunLogs/Actiontrail/{region}/{:04}/{:02}/{:02}",
                day.year(),
                day.month(),
                day.day()
            ));
            fs::create_dir_all(&dir).map_err(|e| GenError::Io {
                path: dir.clone(),
                source: e,
            })?;
            let window = cfg.file_minutes.max(1) * 60;
            let mut i = 0;
            while i < secs.len() {
                let slot = secs[i] / window;
                let mut j = i;
                while j < secs.len() && secs[j] / window == slot {
                    j += 1;
                }
                let t0 = midnight + Duration::seconds(slot * window);
                let name = format!(
                    "{}_Actiontrail_{region}_{}_{:04}.json.gz",
                    ids[0].account,
                    t0.format("%Y%m%dT%H%MZ"),
                    slot
                );
                let path = dir.join(name);
                let events: Vec<Value> = secs[i..j]
                    .iter()
                    .map(|s| {
                        event(
                            &mut rng,
                            cfg,
                            &ids,
                            &id_zipf,
                            &ev_zipf,
                            region,
                            midnight + Duration::seconds(*s),
                        )
                    })
                    .collect();
                stats.bytes_uncompressed += write_file(&path, &events, cfg.format)?;
                stats.events += events.len() as u64;
                stats.files += 1;
                i = j;
            }
        }
    }
    Ok(stats)
}

fn write_file(path: &Path, events: &[Value], format: FileFormat) -> Result<u64, GenError> {
    let io = |e| GenError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = File::create(path).map_err(io)?;
    let mut w = CountingWriter {
        inner: GzEncoder::new(BufWriter::new(f), Compression::fast()),
        n: 0,
    };
    let body = |w: &mut CountingWriter<_>, sep: &[u8]| -> std::io::Result<()> {
        for (k, e) in events.iter().enumerate() {
            if k > 0 {
                w.write_all(sep)?;
            }
            serde_json::to_writer(&mut *w, e)?;
        }
        Ok(())
    };
    match format {
        FileFormat::Array => {
            w.write_all(b"[").map_err(io)?;
            body(&mut w, b",\n").map_err(io)?;
            w.write_all(b"]\n").map_err(io)?;
        }
        FileFormat::Ndjson => {
            body(&mut w, b"\n").map_err(io)?;
            w.write_all(b"\n").map_err(io)?;
        }
        FileFormat::Records => {
            w.write_all(b"{\"Records\":[").map_err(io)?;
            body(&mut w, b",").map_err(io)?;
            w.write_all(b"]}").map_err(io)?;
        }
    }
    let n = w.n;
    w.inner.finish().and_then(|mut b| b.flush()).map_err(io)?;
    Ok(n)
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_and_output_is_deterministic() {
        let cfg = GenConfig {
            events: 1234,
            days: 3,
            regions: 4,
            ..Default::default()
        };
        let total: u64 = counts(&cfg).iter().flatten().sum();
        assert_eq!(total, 1234);
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = generate(&cfg, a.path()).unwrap();
        let sb = generate(&cfg, b.path()).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(sa.events, 1234);
        let per_event = sa.bytes_uncompressed / sa.events;
        assert!(
            (900..1600).contains(&per_event),
            "{per_event} bytes per event"
        );
    }
}
