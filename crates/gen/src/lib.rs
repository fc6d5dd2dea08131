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

use std::collections::{HashMap, HashSet};
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

pub mod audit;
pub mod world;

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
    /// Labelled anomalies injected per kind (see [`AnomalyKind`]); 0 for none. They come on
    /// top of `events` and are returned in [`GenStats::labels`].
    pub anomalies: u32,
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
            anomalies: 0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    pub events: u64,
    pub files: u64,
    pub bytes_uncompressed: u64,
    /// The injected anomalies, in the order they were planned.
    pub labels: Vec<Label>,
}

/// A network no generated identity uses: the source of [`AnomalyKind::WhitelistedIp`]
/// events, standing for a corporate VPN an analyst would whitelist.
pub const WHITELIST_CIDR: &str = "59.82.0.0/16";

/// Kinds of injected anomaly. The first four are what insight jobs must find; the last two
/// must raise nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// An identity operates for a while from a public IP outside every network its account
    /// uses, in a known provider block.
    NewIp,
    /// An identity operates from a network never seen (another provider's block, or IPv6).
    NewNetwork,
    /// One identity makes many write calls of one event name in one region within minutes.
    WriteBurst,
    /// One identity makes many failing read calls of one event name in one region within
    /// minutes.
    ErrorStorm,
    /// An identity uses a new address in the same /24 as one of its usual IPs (no insight).
    NearbyIp,
    /// An identity uses an address in [`WHITELIST_CIDR`] (no insight when whitelisted).
    WhitelistedIp,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::NewIp,
        AnomalyKind::NewNetwork,
        AnomalyKind::WriteBurst,
        AnomalyKind::ErrorStorm,
        AnomalyKind::NearbyIp,
        AnomalyKind::WhitelistedIp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::NewIp => "new_ip",
            AnomalyKind::NewNetwork => "new_network",
            AnomalyKind::WriteBurst => "write_burst",
            AnomalyKind::ErrorStorm => "error_storm",
            AnomalyKind::NearbyIp => "nearby_ip",
            AnomalyKind::WhitelistedIp => "whitelisted_ip",
        }
    }
}

/// One injected anomaly: who, from where, what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub kind: AnomalyKind,
    pub account: String,
    pub principal_id: String,
    pub source_ip: String,
    pub region: String,
    /// The one event name of a burst or storm; `None` for IP anomalies (mixed names).
    pub event_name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub events: u32,
}

impl Label {
    /// The label as a JSON object (for `trail gen --labels`).
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "account": self.account,
            "principalId": self.principal_id,
            "sourceIpAddress": self.source_ip,
            "region": self.region,
            "eventName": self.event_name,
            "start": self.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "end": self.end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "events": self.events,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{}", path.display())]
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

/// Provider blocks (first octets) the generated world's networks come from.
const BLOCKS: [u8; 10] = [47, 42, 101, 106, 116, 120, 139, 203, 198, 8];
/// First octets of blocks no generated identity uses ([`AnomalyKind::NewNetwork`]).
const FOREIGN_BLOCKS: [u8; 6] = [5, 31, 77, 91, 185, 212];

fn net24(rng: &mut impl Rng, firsts: &[u8]) -> [u8; 3] {
    [
        firsts[rng.random_range(0..firsts.len())],
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
    ]
}

fn host(net: [u8; 3], h: u8) -> String {
    format!("{}.{}.{}.{}", net[0], net[1], net[2], h)
}

/// The /24 of a dotted IPv4 address.
fn net_of(ip: &str) -> Option<[u8; 3]> {
    let mut it = ip.split('.').map(|p| p.parse::<u8>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The office networks (/24) of each account: identities of an account work from these.
fn account_networks(cfg: &GenConfig) -> Vec<Vec<[u8; 3]>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0ff1_ce00);
    (0..cfg.accounts.max(1))
        .map(|_| (0..3).map(|_| net24(&mut rng, &BLOCKS)).collect())
        .collect()
}

/// The identities of a configuration (the same for every region and day). Each uses one to
/// three addresses in its account's office networks; its rare IP is another host in the /24
/// of its first usual IP (a colleague's desk, a renewed DHCP lease).
pub fn identities(cfg: &GenConfig) -> Vec<Identity> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x1d3_7f1e5);
    let accounts: Vec<String> = (0..cfg.accounts.max(1))
        .map(|_| format!("1{:015}", rng.random_range(0..1_000_000_000_000_000u64)))
        .collect();
    let nets = account_networks(cfg);
    (0..cfg.identities.max(1))
        .map(|i| {
            let a = i % accounts.len();
            let account = accounts[a].clone();
            let (kind, user_name) = if i < accounts.len() {
                ("root-account", "root".to_owned())
            } else if i % 7 == 0 {
                ("assumed-role", format!("role-{i}"))
            } else {
                ("ram-user", format!("user{i:04}"))
            };
            let n_ips = 1 + (i % 3);
            let usual_ips: Vec<String> = (0..n_ips)
                .map(|_| {
                    let net = nets[a][rng.random_range(0..nets[a].len())];
                    host(net, rng.random_range(1..=200u8))
                })
                .collect();
            let first = net_of(&usual_ips[0]).unwrap_or([10, 0, 0]);
            Identity {
                principal_id: format!("2{:015}", rng.random_range(0..1_000_000_000_000_000u64)),
                access_key_id: format!("LTAI{:016X}", rng.random::<u64>()),
                rare_ip: host(first, rng.random_range(201..=254u8)),
                usual_ips,
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

/// Draw one ordinary event.
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
    let ev = (ev_zipf.sample(rng) as usize - 1).min(EVENTS.len() - 1);
    let source_ip = if rng.random_bool(cfg.rare_ip_rate) {
        who.rare_ip.clone()
    } else if rng.random_bool(0.02) {
        "Internal".to_owned()
    } else {
        who.usual_ips[rng.random_range(0..who.usual_ips.len())].clone()
    };
    let error = rng
        .random_bool(cfg.error_rate)
        .then(|| rng.random_range(0..ERROR_CODES.len()));
    render(rng, who, ev, source_ip, error, region, time)
}

/// Render one event of `who` calling `EVENTS[ev]` from `source_ip`, failing with
/// `ERROR_CODES[error]` if given.
fn render(
    rng: &mut ChaCha8Rng,
    who: &Identity,
    ev: usize,
    source_ip: String,
    error: Option<usize>,
    region: &str,
    time: DateTime<Utc>,
) -> Value {
    let (service, src, name, api, rtype) = EVENTS[ev];
    let read = ["Describe", "List", "Get", "Lookup"]
        .iter()
        .any(|p| name.starts_with(p));
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
    if let Some(k) = error {
        let (code, msg) = ERROR_CODES[k.min(ERROR_CODES.len() - 1)];
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

/// An injected event: who calls what, from where, when (seconds into its day), failing or not.
struct Injected {
    secs: i64,
    who: usize,
    ev: usize,
    ip: String,
    error: Option<usize>,
}

/// Injected events per (region index, day index).
type InjectedByCell = HashMap<(usize, usize), Vec<Injected>>;

fn event_index(name: &str) -> usize {
    EVENTS.iter().position(|e| e.2 == name).unwrap_or(0)
}

/// Plan the labelled anomalies of `cfg`: the injected events of each (region, day) and the
/// labels. Anomalies fall on the last two thirds of the days (identities need history first),
/// each on its own identity among the busiest non-root ones where there are enough.
fn plan_anomalies(cfg: &GenConfig, ids: &[Identity]) -> (InjectedByCell, Vec<Label>) {
    let mut by_cell: InjectedByCell = HashMap::new();
    let mut labels = Vec::new();
    if cfg.anomalies == 0 {
        return (by_cell, labels);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xA40_4A11);
    let regions = cfg.regions.clamp(1, REGIONS.len());
    let days = cfg.days.max(1) as usize;
    let first_day = (days / 3).max(7).min(days - 1);
    let lo = cfg.accounts.max(1).min(ids.len() - 1);
    let hi = (lo + 40).min(ids.len());
    let mut cands: Vec<usize> = (lo..hi).collect();
    for i in (1..cands.len()).rev() {
        cands.swap(i, rng.random_range(0..=i));
    }
    let nets = account_networks(cfg);
    let used: HashSet<[u8; 3]> = nets.iter().flatten().copied().collect();
    let mut next = 0usize;
    for kind in AnomalyKind::ALL {
        for k in 0..cfg.anomalies {
            let w = cands[next % cands.len()];
            next += 1;
            let who = &ids[w];
            let day = rng.random_range(first_day..days);
            let region = rng.random_range(0..regions);
            let start = rng.random_range(60..1300i64) * 60;
            let mut events: Vec<Injected> = Vec::new();
            let mut ip_events = |ip: String, rng: &mut ChaCha8Rng| {
                let n = rng.random_range(6..=14);
                let mut t = start;
                for _ in 0..n {
                    events.push(Injected {
                        secs: t,
                        who: w,
                        ev: rng.random_range(0..12),
                        ip: ip.clone(),
                        error: None,
                    });
                    t += rng.random_range(30..240);
                }
            };
            let (ip, name) = match kind {
                AnomalyKind::NewIp => {
                    let net = loop {
                        let n = net24(&mut rng, &BLOCKS);
                        if !used.contains(&n) {
                            break n;
                        }
                    };
                    (host(net, rng.random_range(1..=254u8)), None)
                }
                AnomalyKind::NewNetwork if k % 2 == 1 => (
                    format!(
                        "2a0{}:{:x}:{:x}:{:x}::{:x}",
                        rng.random_range(1..10u8),
                        rng.random::<u16>(),
                        rng.random::<u16>(),
                        rng.random::<u16>(),
                        rng.random_range(1..0xffffu16)
                    ),
                    None,
                ),
                AnomalyKind::NewNetwork => (
                    host(
                        net24(&mut rng, &FOREIGN_BLOCKS),
                        rng.random_range(1..=254u8),
                    ),
                    None,
                ),
                AnomalyKind::NearbyIp => {
                    let net = net_of(&who.usual_ips[0]).unwrap_or([10, 0, 0]);
                    let ip = loop {
                        let ip = host(net, rng.random_range(1..=254u8));
                        if ip != who.rare_ip && !who.usual_ips.contains(&ip) {
                            break ip;
                        }
                    };
                    (ip, None)
                }
                AnomalyKind::WhitelistedIp => (
                    format!(
                        "59.82.{}.{}",
                        rng.random::<u8>(),
                        rng.random_range(1..=254u8)
                    ),
                    None,
                ),
                AnomalyKind::WriteBurst => {
                    let names = [
                        "DeleteInstance",
                        "StopInstance",
                        "AuthorizeSecurityGroup",
                        "DeleteBucket",
                        "ModifyInstanceAttribute",
                        "CreateInstance",
                    ];
                    (
                        who.usual_ips[0].clone(),
                        Some(names[rng.random_range(0..names.len())]),
                    )
                }
                AnomalyKind::ErrorStorm => {
                    let names = [
                        "ListUsers",
                        "GetUser",
                        "DescribeInstances",
                        "DescribeSecurityGroups",
                    ];
                    (
                        who.usual_ips[0].clone(),
                        Some(names[rng.random_range(0..names.len())]),
                    )
                }
            };
            match name {
                None => ip_events(ip.clone(), &mut rng),
                Some(name) => {
                    let ev = event_index(name);
                    let error = (kind == AnomalyKind::ErrorStorm)
                        .then(|| [0usize, 1, 5][rng.random_range(0..3)]);
                    for m in 0..rng.random_range(6..=10i64) {
                        let mut secs: Vec<i64> = (0..rng.random_range(30..=45))
                            .map(|_| start + m * 60 + rng.random_range(0..60))
                            .collect();
                        secs.sort_unstable();
                        events.extend(secs.into_iter().map(|secs| Injected {
                            secs,
                            who: w,
                            ev,
                            ip: ip.clone(),
                            error,
                        }));
                    }
                }
            }
            let day0 = cfg.start + Duration::days(day as i64);
            let midnight = Utc.from_utc_datetime(&day0.and_hms_opt(0, 0, 0).unwrap_or_default());
            let first = events.first().map_or(start, |e| e.secs);
            let last = events.last().map_or(start, |e| e.secs);
            labels.push(Label {
                kind,
                account: who.account.clone(),
                principal_id: who.principal_id.clone(),
                source_ip: ip,
                region: REGIONS[region].to_owned(),
                event_name: name.map(str::to_owned),
                start: midnight + Duration::seconds(first),
                end: midnight + Duration::seconds(last),
                events: events.len() as u32,
            });
            by_cell.entry((region, day)).or_default().extend(events);
        }
    }
    (by_cell, labels)
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
    let (mut injected, labels) = plan_anomalies(cfg, &ids);
    // Every (region, day) cell has its own random stream, so cells can be written in parallel
    // and the output stays the same byte for byte.
    let mut cells: Vec<(usize, usize, u64, Vec<Injected>)> = Vec::new();
    for (r, per_day) in counts(cfg).iter().enumerate() {
        for (d, &n) in per_day.iter().enumerate() {
            let extra = injected.remove(&(r, d)).unwrap_or_default();
            if n > 0 || !extra.is_empty() {
                cells.push((r, d, n, extra));
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<Result<GenStats, GenError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut stats = GenStats::default();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((r, d, n, extra)) = cells.get(i) else {
                            return Ok(stats);
                        };
                        let cell =
                            generate_cell(cfg, out, &ids, &id_zipf, &ev_zipf, *r, *d, *n, extra)?;
                        stats.events += cell.events;
                        stats.files += cell.files;
                        stats.bytes_uncompressed += cell.bytes_uncompressed;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(GenError::Config("a generator thread panicked".into())))
            })
            .collect()
    });
    let mut stats = GenStats::default();
    for r in results {
        let r = r?;
        stats.events += r.events;
        stats.files += r.files;
        stats.bytes_uncompressed += r.bytes_uncompressed;
    }
    stats.labels = labels;
    Ok(stats)
}

/// Write the files of one region and day.
#[allow(clippy::too_many_arguments)]
fn generate_cell(
    cfg: &GenConfig,
    out: &Path,
    ids: &[Identity],
    id_zipf: &Zipf<f64>,
    ev_zipf: &Zipf<f64>,
    r: usize,
    d: usize,
    n: u64,
    extra: &[Injected],
) -> Result<GenStats, GenError> {
    let mut stats = GenStats::default();
    let region = REGIONS[r];
    let mut rng = ChaCha8Rng::seed_from_u64(seed_for(cfg, r, d as u32));
    let mut arng = ChaCha8Rng::seed_from_u64(seed_for(cfg, r, d as u32) ^ 0xA11CE);
    let day = cfg.start + Duration::days(d as i64);
    let midnight = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
    // (second of the day, None for an ordinary event or the injected event's index)
    let mut secs: Vec<(i64, Option<usize>)> = (0..n)
        .map(|_| (rng.random_range(0..86_400), None))
        .collect();
    secs.extend(extra.iter().enumerate().map(|(k, e)| (e.secs, Some(k))));
    secs.sort_by_key(|&(s, k)| (s, k));
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
        let slot = secs[i].0 / window;
        let mut j = i;
        while j < secs.len() && secs[j].0 / window == slot {
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
            .map(|&(s, k)| {
                let time = midnight + Duration::seconds(s);
                match k {
                    None => event(&mut rng, cfg, ids, id_zipf, ev_zipf, region, time),
                    Some(k) => {
                        let e = &extra[k];
                        render(
                            &mut arng,
                            &ids[e.who],
                            e.ev,
                            e.ip.clone(),
                            e.error,
                            region,
                            time,
                        )
                    }
                }
            })
            .collect();
        stats.bytes_uncompressed += write_file(&path, &events, cfg.format)?;
        stats.events += events.len() as u64;
        stats.files += 1;
        i = j;
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
        assert!(sa.labels.is_empty());
        let per_event = sa.bytes_uncompressed / sa.events;
        assert!(
            (900..1600).contains(&per_event),
            "{per_event} bytes per event"
        );
    }

    #[test]
    fn anomalies_are_labelled_and_injected() {
        let cfg = GenConfig {
            events: 2000,
            days: 12,
            regions: 3,
            anomalies: 2,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let stats = generate(&cfg, dir.path()).unwrap();
        assert_eq!(stats.labels.len(), 2 * AnomalyKind::ALL.len());
        let injected: u64 = stats.labels.iter().map(|l| u64::from(l.events)).sum();
        assert_eq!(stats.events, 2000 + injected);
        for l in &stats.labels {
            assert!(l.start <= l.end);
            assert!(l.start >= Utc.with_ymd_and_hms(2026, 10, 8, 0, 0, 0).unwrap());
            match l.kind {
                AnomalyKind::WriteBurst | AnomalyKind::ErrorStorm => {
                    assert!(l.events >= 180, "{l:?}")
                }
                _ => assert!((6..=14).contains(&l.events), "{l:?}"),
            }
        }
        let again = generate(&cfg, tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(stats, again);
    }
}
