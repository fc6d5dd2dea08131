//! IpInsight: operations of an identity from a source IP unusual for it.
//!
//! **Identity.** The principal: `userIdentity.principalId` within its account
//! (`userIdentity.accountId`, else `recipientAccountId`); without a principal id, the access
//! key id, then the user name.
//!
//! **Baseline.** For a day D, an identity's usual IPs are the IPs it used on the
//! `baseline_days` days before D (default 14). An identity is judged on its own baseline once
//! it was active on at least `min_history_days` of those days with at least
//! `min_history_events` events; an identity with less history is judged on its *account's*
//! baseline (every IP any identity of the account used), and if the account has too little
//! history too, it is not judged (counted as `little history`).
//!
//! **Unusual.** An operation is unusual when its source is an IP address, the IP is not in
//! the whitelist, not in the baseline, and not *near* it: not in the same /`near_v4` (default
//! 24) or /`near_v6` (default 64) network as a baseline IP. Sources that are not IP addresses
//! (`Internal`, `ecs.aliyuncs.com`) are never insights; they are counted.
//!
//! **Providers.** With an IP-to-ASN database (the engine's `--asn-db`), an address is also
//! judged by who owns it: a new address of a provider (autonomous system) the baseline used on
//! at least `min_provider_days` days (default 2) is usual (counted as `sameProvider`): a new
//! lease from the ISP a person always uses, another address of the carrier's NAT pool, another
//! runner of the cloud a CI job always runs in. A provider seen on one day only is not yet
//! established (one trip to a hotel does not make every address of that hotel's ISP usual);
//! its addresses are judged by network alone. Without a database the /24 and /64 rules are
//! all there is, and the report says so.
//!
//! **Insight.** Unusual operations of one identity from one IP form one insight per contiguous
//! window: operations less than `gap_minutes` (default 60) apart belong together. With an ASN
//! database the unit is the new provider rather than the address: the unusual operations of
//! one identity from any addresses of one new provider form the insight (its object is the
//! first address; `sourceAddresses` lists them all), so a stolen key used from three servers
//! of one hosting company, or a new CI pipeline's runners, is one finding. The start record
//! is at the first operation, the end record at the last. An IP judged on day D is part of the
//! baseline from day D+1 on: a new IP is reported once, not every day.
//!
//! **Tables.** The same job judges data-audit logs (`--table audit_logs`): the identity is
//! the database user on its instance (`InstanceName/UserName`) within its member account
//! (`MemberAccount`), the source is `ClientIp`, the day `logDate`. The rules, the baseline and
//! the insight records are the same; an insight's `context.table` says which table it judged,
//! its operations are the audit logs' statements (`OperateType`; `ExecuteStatus 0` as the
//! error), and the ids it covers are each audit log's `LogTime` in milliseconds and its user
//! (`1714560000000:app_ro`). Each table keeps its own
//! job state, so judging one never marks the other's days as judged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;

use datafusion::prelude::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
use ipnet::IpNet;
use serde_json::json;
use trail_query::Engine;
use trail_query::ip::{network, parse_ip, parse_net};
use trail_store::Store;

use crate::{
    Findings, IdentityInfo, Insight, InsightError, InsightType, MAX_COVERED, Result, RunOptions,
    day_number, micros, sql_date, strings, top_values, utc_micros,
};

/// The job's name in the store's job state (judging events).
pub const JOB: &str = "ip";
/// The job's name in the store's job state when it judges data-audit logs.
pub const AUDIT_JOB: &str = "ip-audit_logs";

/// The table IpInsight judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpTable {
    /// Management events: identities are principals, sources `sourceIpAddress`.
    #[default]
    Events,
    /// Data-audit logs: identities are database users per instance, sources `ClientIp`.
    AuditLogs,
}

/// How a table's columns make the job's inputs.
struct Columns {
    table: &'static str,
    /// The account an identity belongs to (for the account baseline).
    account: &'static str,
    /// The identity within its account.
    principal: &'static str,
    ip: &'static str,
    day: &'static str,
    /// `id, t, region, day, account, principal, kind, uname, akid, pid, ip, agent, name, code`
    /// of each operation.
    details: &'static str,
}

const EVENT_COLUMNS: Columns = Columns {
    table: "events",
    account: IDENTITY_SQL,
    principal: PRINCIPAL_SQL,
    ip: "sourceIpAddress",
    day: "eventDate",
    details: "eventId AS id, eventTime AS t, acsRegion AS region, eventDate AS day, \
              coalesce(userIdentity.accountId, recipientAccountId, '') AS account, \
              coalesce(userIdentity.principalId, userIdentity.accessKeyId, \
              userIdentity.userName, '') AS principal, \
              userIdentity.type AS kind, userIdentity.userName AS uname, \
              userIdentity.accessKeyId AS akid, userIdentity.principalId AS pid, \
              sourceIpAddress AS ip, userAgent AS agent, eventName AS name, errorCode AS code",
};

const AUDIT_COLUMNS: Columns = Columns {
    table: "audit_logs",
    account: "coalesce(\"MemberAccount\", '')",
    principal: "concat(coalesce(\"InstanceName\", ''), '/', coalesce(\"UserName\", ''))",
    ip: "\"ClientIp\"",
    day: "\"logDate\"",
    details: "concat(CAST(CAST(\"LogTime\" AS BIGINT) / 1000 AS VARCHAR), ':', \
              coalesce(\"UserName\", '')) AS id, \"LogTime\" AS t, CAST(NULL AS VARCHAR) AS region, \
              \"logDate\" AS day, coalesce(\"MemberAccount\", '') AS account, \
              concat(coalesce(\"InstanceName\", ''), '/', coalesce(\"UserName\", '')) \
              AS principal, 'database-user' AS kind, \"UserName\" AS uname, \
              CAST(NULL AS VARCHAR) AS akid, \
              concat(coalesce(\"InstanceName\", ''), '/', coalesce(\"UserName\", '')) AS pid, \
              \"ClientIp\" AS ip, \"ClientUa\" AS agent, \"OperateType\" AS name, \
              CASE WHEN \"ExecuteStatus\" = 0 THEN 'ExecuteStatus 0' END AS code",
};

impl IpTable {
    fn columns(self) -> &'static Columns {
        match self {
            IpTable::Events => &EVENT_COLUMNS,
            IpTable::AuditLogs => &AUDIT_COLUMNS,
        }
    }

    /// The job's name in the store's job state.
    pub fn job(self) -> &'static str {
        match self {
            IpTable::Events => JOB,
            IpTable::AuditLogs => AUDIT_JOB,
        }
    }

    /// The first and last day the table holds.
    fn days(self, store: &Store) -> Result<Option<(chrono::NaiveDate, chrono::NaiveDate)>> {
        match self {
            IpTable::Events => crate::data_days(store),
            IpTable::AuditLogs => {
                let files = store.audit_log_files()?;
                let min = files.iter().map(|(f, _)| f.date).min();
                let max = files.iter().map(|(f, _)| f.date).max();
                Ok(min.zip(max))
            }
        }
    }
}

/// Parameters of IpInsight (see the module documentation).
#[derive(Debug, Clone)]
pub struct IpOptions {
    pub baseline_days: u32,
    pub min_history_days: u32,
    pub min_history_events: u64,
    pub near_v4: u8,
    pub near_v6: u8,
    pub gap_minutes: i64,
    pub whitelist: Vec<IpNet>,
    /// Days of the baseline a provider must have been seen on to make its other addresses
    /// usual (with an ASN database).
    pub min_provider_days: u32,
    /// The table judged.
    pub table: IpTable,
}

impl Default for IpOptions {
    fn default() -> Self {
        IpOptions {
            baseline_days: 14,
            min_history_days: 3,
            min_history_events: 20,
            near_v4: 24,
            near_v6: 64,
            gap_minutes: 60,
            whitelist: Vec::new(),
            min_provider_days: 2,
            table: IpTable::Events,
        }
    }
}

/// Parse a whitelist: IPs or CIDRs separated by commas, whitespace or new lines; `#` starts a
/// comment. `origin` names where the text came from, for errors.
pub fn parse_whitelist(text: &str, origin: &str) -> Result<Vec<IpNet>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for item in line.split(|c: char| c == ',' || c.is_whitespace()) {
            if item.is_empty() {
                continue;
            }
            out.push(parse_net(item).ok_or_else(|| {
                InsightError::Usage(format!(
                    "{origin}, line {}: `{}` is not an IP address or CIDR (e.g. 203.0.113.0/24)",
                    n + 1,
                    item.escape_default()
                ))
            })?);
        }
    }
    Ok(out)
}

/// Read a whitelist from `--whitelist` items and `--whitelist-file` files.
pub fn load_whitelist(items: &[IpNet], files: &[PathBuf]) -> Result<Vec<IpNet>> {
    let mut out = items.to_vec();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| InsightError::Io {
            path: f.clone(),
            source: e,
        })?;
        out.extend(parse_whitelist(&text, &f.display().to_string())?);
    }
    Ok(out)
}

/// How the events of the judged days were judged (the counts of an IpInsight report).
#[derive(Debug, Clone, Default)]
struct Counts {
    /// Events on the judged days.
    events: u64,
    usual: u64,
    nearby: u64,
    /// A new address of a provider the baseline used (with an ASN database).
    same_provider: u64,
    whitelisted: u64,
    /// Sources that are not IP addresses (`Internal`, service names).
    not_ip: u64,
    /// Identities (and accounts) with too little history to judge.
    little_history: u64,
    /// Judged on the account's baseline.
    account_baseline: u64,
    unusual: u64,
}

impl Counts {
    fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("events", self.events),
            ("usual", self.usual),
            ("nearby", self.nearby),
            ("sameProvider", self.same_provider),
            ("whitelisted", self.whitelisted),
            ("notIp", self.not_ip),
            ("littleHistory", self.little_history),
            ("accountBaseline", self.account_baseline),
            ("unusual", self.unusual),
        ]
    }
}

impl crate::Job for IpOptions {
    fn name(&self) -> &'static str {
        self.table.job()
    }

    fn title(&self) -> &'static str {
        "IpInsight"
    }

    async fn find(&self, engine: &Engine, store: &Store, run: &RunOptions) -> Result<Findings> {
        self::run(engine, store, self, run).await
    }
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(s.to_owned(), i);
        self.names.push(s.to_owned());
        i
    }
}

/// Per-day event counts of an identity or account, oldest first.
#[derive(Default)]
struct History(VecDeque<(i32, u64)>);

impl History {
    fn add(&mut self, day: i32, n: u64) {
        match self.0.back_mut() {
            Some((d, c)) if *d == day => *c += n,
            _ => self.0.push_back((day, n)),
        }
    }
    /// (active days, events) in `[day - window, day)`, dropping older entries.
    fn window(&mut self, day: i32, window: i32) -> (u32, u64) {
        while self.0.front().is_some_and(|(d, _)| *d < day - window) {
            self.0.pop_front();
        }
        let mut days = 0;
        let mut events = 0;
        for (d, n) in &self.0 {
            if *d < day {
                days += 1;
                events += n;
            }
        }
        (days, events)
    }
}

/// Last day each (key, ip) and (key, network) was seen; the days each (key, provider) was
/// seen on; the last day each (key, country) was seen.
#[derive(Default)]
struct Seen {
    ip: HashMap<(u32, u32), i32>,
    net: HashMap<(u32, IpNet), i32>,
    provider: HashMap<(u32, u32), VecDeque<i32>>,
    country: HashMap<(u32, u32), i32>,
    history: HashMap<u32, History>,
}

impl Seen {
    /// Days in `[day - window, day)` on which `key` used `asn`.
    fn provider_days(&self, key: u32, asn: u32, day: i32, window: i32) -> usize {
        self.provider.get(&(key, asn)).map_or(0, |d| {
            d.iter().filter(|&&x| x >= day - window && x < day).count()
        })
    }

    fn add(&mut self, key: u32, g: &Group, ip: &IpFacts, window: i32) {
        self.ip.insert((key, g.ip), g.day);
        if let Some(n) = ip.net {
            self.net.insert((key, n), g.day);
        }
        if let Some(asn) = ip.asn {
            let days = self.provider.entry((key, asn)).or_default();
            if days.back() != Some(&g.day) {
                days.push_back(g.day);
            }
            while days.front().is_some_and(|&d| d < g.day - window) {
                days.pop_front();
            }
        }
        if let Some(c) = ip.country {
            self.country.insert((key, c), g.day);
        }
    }
}

/// What is known of one distinct source address.
#[derive(Default, Clone)]
struct IpFacts {
    addr: Option<IpAddr>,
    net: Option<IpNet>,
    whitelisted: bool,
    asn: Option<u32>,
    org: Option<std::sync::Arc<str>>,
    /// Interned country code.
    country: Option<u32>,
}

struct Group {
    day: i32,
    account: u32,
    ident: u32,
    ip: u32,
    n: u64,
}

#[derive(Clone, Copy)]
enum Level {
    Principal,
    Account,
}

#[derive(Clone, Copy)]
struct Flag {
    level: Level,
    baseline_events: u64,
    baseline_ips: usize,
    /// With an ASN database: the provider is new to the baseline.
    new_provider: Option<bool>,
    /// With a country database: the country is new to the baseline.
    new_country: Option<bool>,
}

const IDENTITY_SQL: &str = "coalesce(userIdentity.accountId, recipientAccountId, '')";
const PRINCIPAL_SQL: &str =
    "coalesce(userIdentity.principalId, userIdentity.accessKeyId, userIdentity.userName, '')";

/// Run IpInsight over the judged days of `store`.
pub async fn run(
    engine: &Engine,
    store: &Store,
    opts: &IpOptions,
    run: &RunOptions,
) -> Result<Findings> {
    let mut report = Counts::default();
    let cols = opts.table.columns();
    let Some((since, until)) =
        crate::judged_range_in(opts.table.days(store)?, store, opts.table.job(), run)?
    else {
        return Ok(Findings::default());
    };
    let mut findings = Findings {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    let window = opts.baseline_days.max(1) as i32;
    let read_from = since - chrono::Duration::days(i64::from(window));
    let sql = format!(
        "SELECT {} AS account, {} AS principal, coalesce({}, '') AS ip, {day} AS day, \
         count(*) AS n FROM {} WHERE {day} >= {} AND {day} <= {} GROUP BY 1, 2, 3, 4",
        cols.account,
        cols.principal,
        cols.ip,
        cols.table,
        sql_date(read_from),
        sql_date(until),
        day = cols.day,
    );
    let batches = engine.collect(&sql).await?;

    let mut accounts = Interner::default();
    let mut idents = Interner::default();
    let mut ips = Interner::default();
    let mut groups = Vec::new();
    for b in &batches {
        let acc = strings(b, "account")?;
        let pri = strings(b, "principal")?;
        let ip = strings(b, "ip")?;
        let day = crate::dates(b, "day")?;
        let n = crate::int64s(b, "n")?;
        for i in 0..b.num_rows() {
            let a = acc[i].as_deref().unwrap_or("");
            let p = pri[i].as_deref().unwrap_or("");
            groups.push(Group {
                day: day[i],
                account: accounts.id(a),
                ident: idents.id(&format!("{a}\u{1f}{p}")),
                ip: ips.id(ip[i].as_deref().unwrap_or("")),
                n: n[i].max(0) as u64,
            });
        }
    }
    groups.sort_unstable_by_key(|g| g.day);
    let intel = engine.ip_intel();
    if !intel.has_asn() {
        findings.notes.push(
            "no ASN database: new addresses are judged by their /24 (IPv4) or /64 (IPv6) \
             network only; with --asn-db FILE (GeoLite2-ASN .mmdb or an ip-location-db CSV) a \
             new address of a provider the identity always uses is not reported, which removes \
             most false positives from ISP, mobile-carrier and cloud address churn"
                .to_owned(),
        );
    }
    let near = |ip: IpAddr| match ip {
        IpAddr::V4(_) => network(ip, opts.near_v4.min(32)),
        IpAddr::V6(_) => network(ip, opts.near_v6.min(128)),
    };
    // Each distinct address is parsed and looked up once.
    let mut countries = Interner::default();
    let facts: Vec<IpFacts> = ips
        .names
        .iter()
        .map(|s| {
            let Some(addr) = parse_ip(s) else {
                return IpFacts::default();
            };
            let asn = intel.has_asn().then(|| intel.asn(addr)).flatten();
            IpFacts {
                addr: Some(addr),
                net: near(addr),
                whitelisted: opts.whitelist.iter().any(|w| w.contains(&addr)),
                asn: asn.as_ref().map(|a| a.number),
                org: asn.map(|a| a.organization),
                country: intel
                    .has_geo()
                    .then(|| intel.country(addr))
                    .flatten()
                    .map(|c| countries.id(&c)),
            }
        })
        .collect();
    let min_provider_days = opts.min_provider_days.max(1) as usize;

    let mut by_ident = Seen::default();
    let mut by_account = Seen::default();
    // (account, principal, ip, day) -> how it was judged
    let mut flagged: HashMap<(u32, u32, i32), Flag> = HashMap::new();
    let (d0, d1) = (day_number(since), day_number(until));
    let mut i = 0;
    while i < groups.len() {
        let day = groups[i].day;
        let mut j = i;
        while j < groups.len() && groups[j].day == day {
            j += 1;
        }
        let day_groups = &groups[i..j];
        if (d0..=d1).contains(&day) {
            for g in day_groups {
                report.events += g.n;
                let ip = &facts[g.ip as usize];
                if ip.addr.is_none() {
                    report.not_ip += g.n;
                    continue;
                }
                if ip.whitelisted {
                    report.whitelisted += g.n;
                    continue;
                }
                let enough = |(days, events): (u32, u64)| {
                    days >= opts.min_history_days && events >= opts.min_history_events
                };
                let own = by_ident
                    .history
                    .entry(g.ident)
                    .or_default()
                    .window(day, window);
                let (seen, key, level, hist) = if enough(own) {
                    (&by_ident, g.ident, Level::Principal, own)
                } else {
                    let acct = by_account
                        .history
                        .entry(g.account)
                        .or_default()
                        .window(day, window);
                    if !enough(acct) {
                        report.little_history += g.n;
                        continue;
                    }
                    report.account_baseline += g.n;
                    (&by_account, g.account, Level::Account, acct)
                };
                let recent = |d: Option<&i32>| d.is_some_and(|&d| d >= day - window);
                if recent(seen.ip.get(&(key, g.ip))) {
                    report.usual += g.n;
                    continue;
                }
                if ip.net.is_some_and(|n| recent(seen.net.get(&(key, n)))) {
                    report.nearby += g.n;
                    continue;
                }
                let provider_days = ip.asn.map(|asn| seen.provider_days(key, asn, day, window));
                if provider_days.is_some_and(|d| d >= min_provider_days) {
                    report.same_provider += g.n;
                    continue;
                }
                report.unusual += g.n;
                let baseline_ips = seen
                    .ip
                    .iter()
                    .filter(|((k, _), d)| *k == key && **d >= day - window)
                    .count();
                flagged.insert(
                    (g.ident, g.ip, day),
                    Flag {
                        level,
                        baseline_events: hist.1,
                        baseline_ips,
                        new_provider: provider_days.map(|d| d == 0),
                        new_country: ip.country.map(|c| !recent(seen.country.get(&(key, c)))),
                    },
                );
            }
        }
        for g in day_groups {
            by_ident.history.entry(g.ident).or_default().add(day, g.n);
            by_account
                .history
                .entry(g.account)
                .or_default()
                .add(day, g.n);
            let ip = &facts[g.ip as usize];
            if ip.addr.is_some() {
                by_ident.add(g.ident, g, ip, window);
                by_account.add(g.account, g, ip, window);
            }
        }
        i = j;
    }
    findings.counts = report.named();
    if !flagged.is_empty() {
        let source = Sources {
            facts: &facts,
            countries: &countries,
        };
        findings.insights = details(engine, opts, &idents, &ips, &source, &flagged, window).await?;
    }
    Ok(findings)
}

struct Op {
    /// The source address (interned).
    ip: u32,
    time: i64,
    id: String,
    region: Option<String>,
    kind: Option<String>,
    user_name: Option<String>,
    access_key: Option<String>,
    principal_id: Option<String>,
    agent: Option<String>,
    name: Option<String>,
    code: Option<String>,
}

/// What the IP databases say about the addresses, for the insight records.
struct Sources<'a> {
    facts: &'a [IpFacts],
    countries: &'a Interner,
}

/// Fetch the flagged operations and cut them into insights.
async fn details(
    engine: &Engine,
    opts: &IpOptions,
    idents: &Interner,
    ips: &Interner,
    sources: &Sources<'_>,
    flagged: &HashMap<(u32, u32, i32), Flag>,
    window: i32,
) -> Result<Vec<Insight>> {
    let days: HashSet<i32> = flagged.keys().map(|k| k.2).collect();
    let flagged_ips: HashSet<u32> = flagged.keys().map(|k| k.1).collect();
    let mut days: Vec<i32> = days.into_iter().collect();
    days.sort_unstable();
    let mut ip_list: Vec<&str> = flagged_ips
        .iter()
        .map(|&i| ips.names[i as usize].as_str())
        .collect();
    ip_list.sort_unstable();
    let day_lits: Vec<Expr> = days
        .iter()
        .map(|&d| lit(ScalarValue::Date32(Some(d))))
        .collect();
    let ip_lits: Vec<Expr> = ip_list.iter().map(|s| lit(*s)).collect();
    let df = engine
        .sql(&format!(
            "SELECT {} FROM {}",
            opts.table.columns().details,
            opts.table.columns().table
        ))
        .await?
        .filter(
            col("day")
                .in_list(day_lits, false)
                .and(col("ip").in_list(ip_lits, false)),
        )?;
    let batches = df.collect().await.map_err(|e| engine.map_error(e))?;
    // With an ASN database, the unusual operations of an identity from one new provider form
    // insights together (one per window, whatever the addresses); without, from one address.
    let group_of = |ip: u32| -> u64 {
        match sources.facts[ip as usize].asn {
            Some(asn) => (1 << 32) | u64::from(asn),
            None => u64::from(ip),
        }
    };
    let mut ops: HashMap<(u32, u64), Vec<(i32, Op)>> = HashMap::new();
    for b in &batches {
        let ids = strings(b, "id")?;
        let times = micros(b, "t")?;
        let regions = strings(b, "region")?;
        let bdays = crate::dates(b, "day")?;
        let acc = strings(b, "account")?;
        let pri = strings(b, "principal")?;
        let kinds = strings(b, "kind")?;
        let unames = strings(b, "uname")?;
        let akids = strings(b, "akid")?;
        let pids = strings(b, "pid")?;
        let bips = strings(b, "ip")?;
        let agents = strings(b, "agent")?;
        let names = strings(b, "name")?;
        let codes = strings(b, "code")?;
        for i in 0..b.num_rows() {
            let key = format!(
                "{}\u{1f}{}",
                acc[i].as_deref().unwrap_or(""),
                pri[i].as_deref().unwrap_or("")
            );
            let (Some(&ident), Some(&ip)) = (
                idents.ids.get(&key),
                ips.ids.get(bips[i].as_deref().unwrap_or("")),
            ) else {
                continue;
            };
            if !flagged.contains_key(&(ident, ip, bdays[i])) {
                continue;
            }
            ops.entry((ident, group_of(ip))).or_default().push((
                bdays[i],
                Op {
                    ip,
                    time: times[i],
                    id: ids[i].clone().unwrap_or_default(),
                    region: regions[i].clone(),
                    kind: kinds[i].clone(),
                    user_name: unames[i].clone(),
                    access_key: akids[i].clone(),
                    principal_id: pids[i].clone(),
                    agent: agents[i].clone(),
                    name: names[i].clone(),
                    code: codes[i].clone(),
                },
            ));
        }
    }
    let gap_us = opts.gap_minutes.max(1) * 60_000_000;
    let mut out = Vec::new();
    for ((ident, _), mut list) in ops {
        list.sort_by(|a, b| a.1.time.cmp(&b.1.time).then_with(|| a.1.id.cmp(&b.1.id)));
        let mut start = 0;
        for k in 1..=list.len() {
            if k < list.len() && list[k].1.time - list[k - 1].1.time < gap_us {
                continue;
            }
            let (day, ip) = (list[start].0, list[start].1.ip);
            if let Some(flag) = flagged.get(&(ident, ip, day)) {
                let mut i = insight(
                    &idents.names[ident as usize],
                    &ips.names[ip as usize],
                    &list[start..k],
                    *flag,
                    window,
                );
                let f = &sources.facts[ip as usize];
                i.context.insert(
                    "source".into(),
                    json!({
                        "asn": f.asn,
                        "organization": f.org.as_deref(),
                        "country": f.country.map(|c| sources.countries.names[c as usize].as_str()),
                    }),
                );
                let mut addresses: Vec<&str> = Vec::new();
                for (_, op) in &list[start..k] {
                    let a = ips.names[op.ip as usize].as_str();
                    if !addresses.contains(&a) {
                        addresses.push(a);
                    }
                }
                i.context.insert("sourceAddresses".into(), json!(addresses));
                i.context
                    .insert("newProvider".into(), json!(flag.new_provider));
                i.context
                    .insert("newCountry".into(), json!(flag.new_country));
                i.context
                    .insert("table".into(), json!(opts.table.columns().table));
                out.push(i);
            }
            start = k;
        }
    }
    out.sort_by(|a, b| {
        (
            a.start,
            &a.account,
            &a.object,
            &a.identity.as_ref().map(|i| &i.principal_id),
        )
            .cmp(&(
                b.start,
                &b.account,
                &b.object,
                &b.identity.as_ref().map(|i| &i.principal_id),
            ))
    });
    Ok(out)
}

fn insight(ident: &str, ip: &str, ops: &[(i32, Op)], flag: Flag, window: i32) -> Insight {
    let account = ident.split('\u{1f}').next().unwrap_or("").to_owned();
    let first = &ops[0].1;
    let last = &ops[ops.len() - 1].1;
    let minutes = ((last.time - first.time) as f64 / 60e6).ceil().max(1.0);
    let mut counts: [HashMap<String, u64>; 4] = Default::default();
    for (_, op) in ops {
        for (k, v) in [&op.agent, &op.principal_id, &op.name, &op.code]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                *counts[k].entry(v.clone()).or_default() += 1;
            }
        }
    }
    let baseline_minutes = i64::from(window) * 1440;
    let mut context = serde_json::Map::new();
    context.insert(
        "baselineLevel".into(),
        json!(match flag.level {
            Level::Principal => "principal",
            Level::Account => "account",
        }),
    );
    context.insert("baselineIpCount".into(), json!(flag.baseline_ips));
    Insight {
        insight_type: InsightType::IpInsight,
        account: account.clone(),
        region: first.region.clone(),
        object: ip.to_owned(),
        start: utc_micros(first.time),
        end: utc_micros(last.time),
        identity: Some(IdentityInfo {
            kind: first.kind.clone(),
            principal_id: first.principal_id.clone(),
            account_id: Some(account),
            user_name: first.user_name.clone(),
            access_key_id: first.access_key.clone(),
        }),
        event_name: None,
        source_ip: Some(ip.to_owned()),
        attributions: vec![
            ("userAgent", top_values(&counts[0], None, minutes, 5)),
            ("principalId", top_values(&counts[1], None, minutes, 5)),
            ("apiRelated", top_values(&counts[2], None, minutes, 5)),
            ("errorCode", top_values(&counts[3], None, minutes, 5)),
        ],
        insight_average: ops.len() as f64 / minutes,
        insight_minutes: minutes as i64,
        baseline_average: flag.baseline_events as f64 / baseline_minutes as f64,
        baseline_minutes,
        insight_count: ops.len() as u64,
        context,
        covered: ops
            .iter()
            .take(MAX_COVERED)
            .map(|(_, o)| o.id.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_parses_lists_and_files() {
        let w =
            parse_whitelist("10.0.0.0/8, 203.0.113.7\n# office\n2001:db8::/32 # v6", "x").unwrap();
        assert_eq!(w.len(), 3);
        assert!(w[1].contains(&"203.0.113.7".parse::<IpAddr>().unwrap()));
        let e = parse_whitelist("10.0.0.0/8\nnot-an-ip", "list.txt").unwrap_err();
        assert!(e.to_string().contains("list.txt, line 2"), "{e}");
    }

    #[test]
    fn history_window_counts_only_earlier_days() {
        let mut h = History::default();
        h.add(1, 5);
        h.add(1, 1);
        h.add(5, 2);
        h.add(9, 4);
        assert_eq!(h.window(9, 7), (1, 2));
        assert_eq!(h.window(10, 14), (2, 6));
    }
}
