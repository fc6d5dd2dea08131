//! The IP-churn world: identities whose source addresses behave as real users' do, with
//! labelled stolen-key uses, and the IP-to-ASN table of every provider in it.
//!
//! Detection of unusual source IPs is easy on a world where everyone keeps one address. This
//! world is built to be hard, from how addresses are handed out in practice:
//!
//! * **office**: identities of an account share a few NAT egress addresses of a business ISP;
//! * **residential churn**: home workers get an address from their ISP's pool, and a new one,
//!   in another /24 of the pool, every few days (the lease);
//! * **mobile NAT**: carrier-grade NAT hands out an address from hundreds of /24s per session;
//! * **hosted runners**: CI jobs call from a fresh address of a cloud provider each run;
//! * **cloud services**: service roles call from many addresses of the cloud's ranges;
//! * **travel**: some people work from a hotel for a few days, abroad or in another city
//!   (benign, but a new provider, and maybe a new country, for them);
//! * **joiners**: some identities start in the judged days (a new hire, a new pipeline).
//!
//! Stolen-key uses (the labelled anomalies) come from hosting providers (some from a block
//! right next to the victim's own ISP), from foreign ISPs, and from the same /16 as a
//! colleague's normal address (another /24, the colleague's ISP, one the victim never uses).
//!
//! Every provider is an autonomous system with its own prefixes; [`World::asn_csv`] gives the
//! table in the widely published `range_start,range_end,asn,organization` layout, so insight
//! jobs can be measured with and without knowing who owns an address. The ASNs are from the
//! private-use range (64512-65534) and the organizations are invented.

use std::collections::HashMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::{AGENTS, EVENTS, GenError, Identity, REGIONS, write_file};

/// What a provider is to the people in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Business fiber: office NAT egress.
    Business,
    /// Home broadband with rotating leases.
    Residential,
    /// A mobile carrier behind carrier-grade NAT.
    Mobile,
    /// A public cloud: hosted CI runners and cloud services.
    Cloud,
    /// Rentable servers (where stolen keys are used from).
    Hosting,
    /// Broadband abroad (travel, and stolen-key uses).
    Foreign,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Business => "business",
            ProviderKind::Residential => "residential",
            ProviderKind::Mobile => "mobile",
            ProviderKind::Cloud => "cloud",
            ProviderKind::Hosting => "hosting",
            ProviderKind::Foreign => "foreign",
        }
    }
}

/// An autonomous system of the world.
#[derive(Debug, Clone)]
pub struct Provider {
    pub asn: u32,
    pub org: &'static str,
    pub country: &'static str,
    pub kind: ProviderKind,
    /// IPv4 prefixes (network address, length).
    pub prefixes: Vec<(Ipv4Addr, u8)>,
}

fn p(
    asn: u32,
    org: &'static str,
    country: &'static str,
    kind: ProviderKind,
    nets: &[&str],
) -> Provider {
    Provider {
        asn,
        org,
        country,
        kind,
        prefixes: nets
            .iter()
            .filter_map(|n| {
                let (a, l) = n.split_once('/')?;
                Some((a.parse().ok()?, l.parse().ok()?))
            })
            .collect(),
    }
}

/// The providers of the world (fixed: the seed picks who uses which).
pub fn providers() -> Vec<Provider> {
    use ProviderKind::*;
    vec![
        p(
            64501,
            "Metro Business Fiber",
            "CN",
            Business,
            &["58.32.0.0/16"],
        ),
        p(
            64502,
            "Harbour Enterprise Networks",
            "CN",
            Business,
            &["116.228.0.0/16"],
        ),
        p(
            64510,
            "Eastnet Broadband",
            "CN",
            Residential,
            &["60.160.0.0/14"],
        ),
        p(
            64511,
            "Riverline Cable",
            "CN",
            Residential,
            &["61.128.0.0/15"],
        ),
        p(
            64512,
            "Northstar Home",
            "CN",
            Residential,
            &["110.80.0.0/14"],
        ),
        p(64513, "Coastal DSL", "CN", Residential, &["113.64.0.0/15"]),
        p(64520, "Skylink Mobile", "CN", Mobile, &["117.128.0.0/12"]),
        p(64521, "Unity Wireless", "CN", Mobile, &["223.64.0.0/13"]),
        p(
            64530,
            "Nimbus Cloud",
            "CN",
            Cloud,
            &["47.80.0.0/12", "8.128.0.0/10"],
        ),
        p(
            64531,
            "Stratus Compute",
            "US",
            Cloud,
            &["13.64.0.0/11", "20.32.0.0/11"],
        ),
        p(64540, "QuickVPS", "NL", Hosting, &["45.76.0.0/15"]),
        // Hosting blocks right next to residential ISPs' pools.
        p(64541, "Bulwark Hosting", "CN", Hosting, &["61.130.0.0/16"]),
        p(64542, "Harbor Servers", "CN", Hosting, &["60.164.0.0/16"]),
        p(64543, "Offshore Metal", "SC", Hosting, &["185.220.0.0/16"]),
        p(64550, "Alpenkabel", "DE", Foreign, &["84.56.0.0/14"]),
        p(
            64551,
            "Lusitania Telecom",
            "PT",
            Foreign,
            &["85.240.0.0/13"],
        ),
        p(
            64552,
            "Pacific Rim Broadband",
            "US",
            Foreign,
            &["73.0.0.0/10"],
        ),
        p(64553, "Siam Mobile", "TH", Foreign, &["49.228.0.0/14"]),
    ]
}

/// How an identity's calls are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Office,
    Hybrid,
    Home,
    Mobile,
    Ci,
    Service,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Office => "office",
            Profile::Hybrid => "hybrid",
            Profile::Home => "home",
            Profile::Mobile => "mobile",
            Profile::Ci => "ci",
            Profile::Service => "service",
        }
    }

    fn human(self) -> bool {
        !matches!(self, Profile::Ci | Profile::Service)
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub days: u32,
    pub accounts: usize,
    pub identities: usize,
    /// Labelled stolen-key uses, on the days after the first `baseline_days`.
    pub anomalies: u32,
    /// Days before the first anomaly (the baseline a detector learns from).
    pub baseline_days: u32,
    pub start: NaiveDate,
    pub regions: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 7,
            days: 30,
            accounts: 12,
            identities: 350,
            anomalies: 60,
            baseline_days: 15,
            start: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default(),
            regions: 4,
        }
    }
}

/// A stolen-key use: who, from where, which day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StolenKeyUse {
    pub account: String,
    pub principal_id: String,
    pub source_ip: String,
    pub day: NaiveDate,
    /// `hosting`, `hosting_next_to_isp`, `foreign`, `colleague_slash16`.
    pub how: &'static str,
    pub events: u32,
}

/// A trip abroad: the identity works from a foreign ISP on `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub principal_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// An identity that starts in the judged days (a new hire, a new pipeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joiner {
    pub principal_id: String,
    pub first_day: NaiveDate,
}

/// What was generated, with the labels a detector is judged by.
#[derive(Debug, Clone)]
pub struct World {
    pub events: u64,
    pub files: u64,
    pub bytes_uncompressed: u64,
    pub identities: Vec<(Identity, Profile)>,
    pub anomalies: Vec<StolenKeyUse>,
    pub trips: Vec<Trip>,
    pub joiners: Vec<Joiner>,
    pub providers: Vec<Provider>,
}

impl World {
    /// The IP-to-ASN table of the world: `range_start,range_end,asn,organization` (inclusive
    /// ranges, no header), sorted by start.
    pub fn asn_csv(&self) -> String {
        let mut rows: Vec<(u32, u32, u32, &str)> = Vec::new();
        for p in &self.providers {
            for (net, len) in &p.prefixes {
                let start = u32::from(*net);
                let end = start | (u32::MAX >> len);
                rows.push((start, end, p.asn, p.org));
            }
        }
        rows.sort_unstable();
        rows.iter()
            .map(|(s, e, asn, org)| {
                format!(
                    "{},{},{asn},{org}\n",
                    Ipv4Addr::from(*s),
                    Ipv4Addr::from(*e)
                )
            })
            .collect()
    }

    /// The labels as JSON: identities with their profile, stolen-key uses, trips, and the
    /// providers' prefixes (to say which kind of address a finding came from).
    pub fn labels_json(&self) -> Value {
        json!({
            "identities": self.identities.iter().map(|(i, p)| json!({
                "account": i.account, "principalId": i.principal_id,
                "userName": i.user_name, "profile": p.as_str(),
            })).collect::<Vec<_>>(),
            "anomalies": self.anomalies.iter().map(|a| json!({
                "account": a.account, "principalId": a.principal_id,
                "sourceIpAddress": a.source_ip, "day": a.day.to_string(),
                "how": a.how, "events": a.events,
            })).collect::<Vec<_>>(),
            "trips": self.trips.iter().map(|t| json!({
                "principalId": t.principal_id, "from": t.from.to_string(), "to": t.to.to_string(),
            })).collect::<Vec<_>>(),
            "joiners": self.joiners.iter().map(|j| json!({
                "principalId": j.principal_id, "firstDay": j.first_day.to_string(),
            })).collect::<Vec<_>>(),
            "providers": self.providers.iter().map(|p| json!({
                "asn": p.asn, "org": p.org, "country": p.country, "kind": p.kind.as_str(),
                "prefixes": p.prefixes.iter().map(|(n, l)| format!("{n}/{l}")).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// A random address inside a prefix (never the network or broadcast address of its /24).
fn addr_in(rng: &mut impl Rng, (net, len): (Ipv4Addr, u8)) -> u32 {
    let base = u32::from(net);
    let size = 1u64 << (32 - u32::from(len));
    let v = base + rng.random_range(0..size) as u32;
    (v & !0xff) | rng.random_range(1..=254u32)
}

fn ip_text(v: u32) -> String {
    Ipv4Addr::from(v).to_string()
}

/// A person's or a job's addressing state.
struct Agent {
    profile: Profile,
    /// Index of the home ISP or carrier in the providers list.
    home: usize,
    mobile: usize,
    cloud: usize,
    /// Current home lease, and the day it ends.
    lease: u32,
    lease_ends: i64,
    lease_days: i64,
    /// Events per active day (mean).
    rate: f64,
}

/// Generate the world under `out` (an ActionTrail delivery tree).
pub fn generate_world(cfg: &WorldConfig, out: &Path) -> Result<World, GenError> {
    if cfg.identities == 0 || cfg.accounts == 0 || cfg.days <= cfg.baseline_days {
        return Err(GenError::Config(
            "the world needs identities, accounts, and more days than baseline days".into(),
        ));
    }
    let provs = providers();
    let of_kind = |k: ProviderKind| -> Vec<usize> {
        provs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == k)
            .map(|(i, _)| i)
            .collect()
    };
    let (business, residential, mobile, cloud, foreign) = (
        of_kind(ProviderKind::Business),
        of_kind(ProviderKind::Residential),
        of_kind(ProviderKind::Mobile),
        of_kind(ProviderKind::Cloud),
        of_kind(ProviderKind::Foreign),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0c4u64.rotate_left(40));
    let accounts: Vec<String> = (0..cfg.accounts)
        .map(|_| format!("1{:015}", rng.random_range(0..1_000_000_000_000_000u64)))
        .collect();
    // Each account's office: 2-4 egress addresses in a /28 of a business ISP.
    let offices: Vec<Vec<u32>> = (0..cfg.accounts)
        .map(|_| {
            let prov = &provs[business[rng.random_range(0..business.len())]];
            let base = addr_in(&mut rng, prov.prefixes[0]) & !0xf;
            (0..rng.random_range(2..=4u32))
                .map(|k| base + 1 + k)
                .collect()
        })
        .collect();
    let mut agents = Vec::with_capacity(cfg.identities);
    let mut identities = Vec::with_capacity(cfg.identities);
    for i in 0..cfg.identities {
        let a = i % cfg.accounts;
        let profile = match rng.random_range(0..100) {
            0..30 => Profile::Office,
            30..55 => Profile::Hybrid,
            55..70 => Profile::Home,
            70..82 => Profile::Mobile,
            82..92 => Profile::Ci,
            _ => Profile::Service,
        };
        let (kind, user_name) = match profile {
            Profile::Ci => ("ram-user", format!("ci-runner-{i:03}")),
            Profile::Service => ("assumed-role", format!("svc-role-{i:03}")),
            _ => ("ram-user", format!("user{i:04}")),
        };
        let home = residential[rng.random_range(0..residential.len())];
        let lease_days = [1i64, 2, 3, 4, 5, 7, 10][rng.random_range(0..7)];
        let lease = addr_in(&mut rng, provs[home].prefixes[0]);
        agents.push(Agent {
            profile,
            home,
            mobile: mobile[rng.random_range(0..mobile.len())],
            cloud: cloud[rng.random_range(0..cloud.len())],
            lease,
            lease_ends: rng.random_range(0..lease_days),
            lease_days,
            rate: match profile {
                Profile::Ci => rng.random_range(20.0..60.0),
                Profile::Service => rng.random_range(20.0..80.0),
                _ => rng.random_range(8.0..45.0),
            },
        });
        identities.push((
            Identity {
                account: accounts[a].clone(),
                kind,
                principal_id: format!("2{:015}", rng.random_range(0..1_000_000_000_000_000u64)),
                user_name,
                access_key_id: format!("LTAI{:016X}", rng.random::<u64>()),
                usual_ips: Vec::new(),
                rare_ip: String::new(),
                agent: AGENTS[rng.random_range(0..AGENTS.len())],
                mfa: rng.random_bool(0.6),
            },
            profile,
        ));
    }
    // Trips: about one person in thirty travels for 2-4 days inside the judged days, half
    // abroad, half in another city, and works from the hotel's network (a foreign ISP, or a
    // domestic ISP not their own).
    let judged_from = i64::from(cfg.baseline_days);
    let last_day = i64::from(cfg.days) - 1;
    let mut trips: HashMap<usize, (i64, i64, u32)> = HashMap::new();
    for (i, ag) in agents.iter().enumerate() {
        if ag.profile.human() && rng.random_bool(0.03) {
            let from = rng.random_range(judged_from..=last_day);
            let to = (from + rng.random_range(1..=3)).min(last_day);
            let hotel = if rng.random_bool(0.5) {
                &provs[foreign[rng.random_range(0..foreign.len())]]
            } else {
                let others: Vec<usize> = residential
                    .iter()
                    .copied()
                    .filter(|&r| r != ag.home)
                    .collect();
                &provs[others[rng.random_range(0..others.len())]]
            };
            trips.insert(i, (from, to, addr_in(&mut rng, hotel.prefixes[0])));
        }
    }
    // Joiners: one identity in twenty (a new hire, a new pipeline) starts on a judged day.
    let starts: Vec<i64> = (0..agents.len())
        .map(|_| {
            if rng.random_bool(0.05) {
                rng.random_range(judged_from..=last_day)
            } else {
                0
            }
        })
        .collect();
    let anomalies = plan_stolen_keys(cfg, &mut rng, &provs, &agents, &identities, |i| {
        !trips.contains_key(&i) && starts[i] == 0
    });
    let mut world = World {
        events: 0,
        files: 0,
        bytes_uncompressed: 0,
        anomalies: Vec::new(),
        trips: trips
            .iter()
            .map(|(&i, &(from, to, _))| Trip {
                principal_id: identities[i].0.principal_id.clone(),
                from: cfg.start + Duration::days(from),
                to: cfg.start + Duration::days(to),
            })
            .collect(),
        joiners: starts
            .iter()
            .enumerate()
            .filter(|(_, d)| **d > 0)
            .map(|(i, &d)| Joiner {
                principal_id: identities[i].0.principal_id.clone(),
                first_day: cfg.start + Duration::days(d),
            })
            .collect(),
        identities,
        providers: provs.clone(),
    };
    world
        .trips
        .sort_by(|a, b| (a.from, &a.principal_id).cmp(&(b.from, &b.principal_id)));
    let regions = cfg.regions.clamp(1, REGIONS.len());
    let home_region: Vec<usize> = (0..agents.len())
        .map(|_| rng.random_range(0..regions))
        .collect();
    for d in 0..i64::from(cfg.days) {
        let date = cfg.start + Duration::days(d);
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        // (second of the day, region, identity, source address)
        let mut calls: Vec<(i64, usize, usize, u32)> = Vec::new();
        for (i, ag) in agents.iter_mut().enumerate() {
            if d >= ag.lease_ends {
                ag.lease = addr_in(&mut rng, provs[ag.home].prefixes[0]);
                ag.lease_ends = d + ag.lease_days;
            }
            let active = match ag.profile {
                _ if d < starts[i] => false,
                Profile::Ci | Profile::Service => true,
                _ if weekend => rng.random_bool(0.2),
                _ => rng.random_bool(0.9),
            };
            if !active {
                continue;
            }
            let n = ((ag.rate * rng.random_range(0.5..1.5)) as usize).max(1);
            let region = |rng: &mut ChaCha8Rng| {
                if rng.random_bool(0.8) {
                    home_region[i]
                } else {
                    rng.random_range(0..regions)
                }
            };
            match ag.profile {
                Profile::Ci => {
                    // Jobs of 5-20 calls, each from a fresh runner address.
                    let mut left = n;
                    while left > 0 {
                        let job = left.min(rng.random_range(5..=20));
                        let net = pick(&mut rng, &provs[ag.cloud].prefixes);
                        let addr = addr_in(&mut rng, net);
                        let t0 = rng.random_range(0..86_000);
                        let r = region(&mut rng);
                        for k in 0..job {
                            calls.push((t0 + k as i64 * rng.random_range(1..20), r, i, addr));
                        }
                        left -= job;
                    }
                }
                Profile::Service => {
                    let pool: Vec<u32> = (0..rng.random_range(10..30))
                        .map(|_| {
                            let net = pick(&mut rng, &provs[ag.cloud].prefixes);
                            addr_in(&mut rng, net)
                        })
                        .collect();
                    for _ in 0..n {
                        let addr = pool[rng.random_range(0..pool.len())];
                        calls.push((rng.random_range(0..86_400), region(&mut rng), i, addr));
                    }
                }
                _ => {
                    // One to three sessions; each has one source address.
                    let trip = trips.get(&i).filter(|(f, t, _)| (*f..=*t).contains(&d));
                    let sessions = rng.random_range(1..=3usize);
                    for s in 0..sessions {
                        let office = offices[i % cfg.accounts]
                            [rng.random_range(0..offices[i % cfg.accounts].len())];
                        let addr = match (trip, ag.profile) {
                            (Some((_, _, hotel)), _) => *hotel,
                            (None, Profile::Office) => office,
                            (None, Profile::Hybrid) if !weekend && rng.random_bool(0.6) => office,
                            (None, Profile::Mobile) if rng.random_bool(0.5) => {
                                addr_in(&mut rng, provs[ag.mobile].prefixes[0])
                            }
                            _ => ag.lease,
                        };
                        let start = if weekend {
                            rng.random_range(0..80_000)
                        } else {
                            rng.random_range(7 * 3600..19 * 3600)
                        };
                        let r = region(&mut rng);
                        let share = n / sessions + usize::from(s < n % sessions);
                        for _ in 0..share {
                            calls.push((start + rng.random_range(0..5_400), r, i, addr));
                        }
                    }
                }
            }
        }
        for &(victim, day, ip, how) in &anomalies {
            if day != d {
                continue;
            }
            let n = rng.random_range(3..=12u32);
            let mut t = rng.random_range(0..80_000i64);
            let r = home_region[victim];
            for _ in 0..n {
                calls.push((t, r, victim, ip));
                t += rng.random_range(30..480);
            }
            world.anomalies.push(StolenKeyUse {
                account: world.identities[victim].0.account.clone(),
                principal_id: world.identities[victim].0.principal_id.clone(),
                source_ip: ip_text(ip),
                day: date,
                how,
                events: n,
            });
        }
        let (events, files, bytes) = write_day(out, date, &mut calls, &world.identities, &mut rng)?;
        world.events += events;
        world.files += files;
        world.bytes_uncompressed += bytes;
    }
    Ok(world)
}

fn pick(rng: &mut impl Rng, prefixes: &[(Ipv4Addr, u8)]) -> (Ipv4Addr, u8) {
    prefixes[rng.random_range(0..prefixes.len())]
}

/// Choose the stolen-key uses: (victim, day, address, how).
fn plan_stolen_keys(
    cfg: &WorldConfig,
    rng: &mut ChaCha8Rng,
    provs: &[Provider],
    agents: &[Agent],
    identities: &[(Identity, Profile)],
    eligible: impl Fn(usize) -> bool,
) -> Vec<(usize, i64, u32, &'static str)> {
    let of_kind =
        |k: ProviderKind| -> Vec<&Provider> { provs.iter().filter(|p| p.kind == k).collect() };
    let hosting = of_kind(ProviderKind::Hosting);
    let foreign = of_kind(ProviderKind::Foreign);
    let humans: Vec<usize> = (0..agents.len())
        .filter(|&i| agents[i].profile.human() && eligible(i))
        .collect();
    let judged_from = i64::from(cfg.baseline_days);
    let last_day = i64::from(cfg.days) - 1;
    let mut out = Vec::new();
    if humans.is_empty() {
        return out;
    }
    for k in 0..cfg.anomalies {
        let victim = humans[rng.random_range(0..humans.len())];
        let day = rng.random_range(judged_from..=last_day);
        let (ip, how) = match k % 4 {
            0 => {
                let net = hosting[rng.random_range(0..hosting.len())].prefixes[0];
                (addr_in(rng, net), "hosting")
            }
            1 => {
                // The hosting block nearest the victim's own ISP.
                let isp = u32::from(provs[agents[victim].home].prefixes[0].0);
                let near = hosting
                    .iter()
                    .min_by_key(|h| u32::from(h.prefixes[0].0).abs_diff(isp))
                    .map_or(hosting[0].prefixes[0], |h| h.prefixes[0]);
                (addr_in(rng, near), "hosting_next_to_isp")
            }
            2 => {
                let net = foreign[rng.random_range(0..foreign.len())].prefixes[0];
                (addr_in(rng, net), "foreign")
            }
            _ => {
                // A colleague's ISP that the victim does not use: the /16 of the colleague's
                // first lease, another /24 in it.
                let colleague = (0..64)
                    .map(|_| rng.random_range(0..agents.len()))
                    .find(|&c| {
                        c != victim
                            && identities[c].0.account == identities[victim].0.account
                            && agents[c].home != agents[victim].home
                            && agents[c].profile.human()
                    })
                    .unwrap_or((victim + 1) % agents.len());
                let theirs = agents[colleague].lease;
                let third = ((theirs >> 8) & 0xff) ^ rng.random_range(1..=255u32);
                let ip = (theirs & 0xffff_0000) | (third << 8) | rng.random_range(1..=254u32);
                (ip, "colleague_slash16")
            }
        };
        out.push((victim, day, ip, how));
    }
    out
}

/// Write one day's calls as delivered files: one gzip JSON array per region per hour (the
/// world is sparse: per 5 minutes, most files would hold one event).
/// Returns (events, files, uncompressed bytes).
fn write_day(
    out: &Path,
    date: NaiveDate,
    calls: &mut [(i64, usize, usize, u32)],
    ids: &[(Identity, Profile)],
    rng: &mut ChaCha8Rng,
) -> Result<(u64, u64, u64), GenError> {
    let (mut n_events, mut n_files, mut n_bytes) = (0, 0, 0);
    let zipf = rand_distr::Zipf::new(EVENTS.len() as f64, 1.2)
        .map_err(|e| GenError::Config(e.to_string()))?;
    let midnight = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
    for c in calls.iter_mut() {
        c.0 = c.0.clamp(0, 86_399);
    }
    calls.sort_unstable();
    let mut by_region: Vec<Vec<&(i64, usize, usize, u32)>> = vec![Vec::new(); REGIONS.len()];
    for c in calls.iter() {
        by_region[c.1].push(c);
    }
    for (r, list) in by_region.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let region = REGIONS[r];
        let dir = out.join(format!(
            "AliyunLogs/Actiontrail/{region}/{:04}/{:02}/{:02}",
            date.year(),
            date.month(),
            date.day()
        ));
        fs::create_dir_all(&dir).map_err(|e| GenError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let mut i = 0;
        while i < list.len() {
            let slot = list[i].0 / 3600;
            let mut j = i;
            while j < list.len() && list[j].0 / 3600 == slot {
                j += 1;
            }
            let t0 = midnight + Duration::seconds(slot * 3600);
            let events: Vec<Value> = list[i..j]
                .iter()
                .map(|&&(secs, _, who, ip)| {
                    let ev = (rand_distr::Distribution::sample(&zipf, rng) as usize - 1)
                        .min(EVENTS.len() - 1);
                    let error = rng.random_bool(0.02).then(|| rng.random_range(0..6));
                    crate::render(
                        rng,
                        &ids[who].0,
                        ev,
                        ip_text(ip),
                        error,
                        region,
                        midnight + Duration::seconds(secs),
                    )
                })
                .collect();
            let path = dir.join(format!(
                "{}_Actiontrail_{region}_{}_{slot:04}.json.gz",
                ids[0].0.account,
                t0.format("%Y%m%dT%H%MZ")
            ));
            n_bytes += write_file(&path, &events, crate::FileFormat::Array)?;
            n_events += events.len() as u64;
            n_files += 1;
            i = j;
        }
    }
    Ok((n_events, n_files, n_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_deterministic_and_labelled() {
        let cfg = WorldConfig {
            identities: 40,
            accounts: 3,
            days: 20,
            baseline_days: 14,
            anomalies: 8,
            ..Default::default()
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let wa = generate_world(&cfg, a.path()).unwrap();
        let wb = generate_world(&cfg, b.path()).unwrap();
        assert_eq!(wa.events, wb.events);
        assert_eq!(wa.anomalies, wb.anomalies);
        assert_eq!(wa.labels_json(), wb.labels_json());
        assert_eq!(wa.anomalies.len(), 8);
        assert!(wa.events > 2_000, "{}", wa.events);
        for x in &wa.anomalies {
            assert!(x.day >= cfg.start + Duration::days(14), "{x:?}");
        }
        // Every address of the world lies in exactly one provider's range of the table.
        let csv = wa.asn_csv();
        let ranges: Vec<(u32, u32)> = csv
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    u32::from(f[0].parse::<Ipv4Addr>().unwrap()),
                    u32::from(f[1].parse::<Ipv4Addr>().unwrap()),
                )
            })
            .collect();
        assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "ranges overlap");
        for x in &wa.anomalies {
            let ip = u32::from(x.source_ip.parse::<Ipv4Addr>().unwrap());
            assert_eq!(
                ranges
                    .iter()
                    .filter(|(s, e)| (*s..=*e).contains(&ip))
                    .count(),
                1,
                "{x:?}"
            );
        }
    }
}
