//! Data-audit logs (`DescribeAuditLogs` items) of the same world as the events: the same
//! accounts, the people's database users named as their RAM users and connecting from their
//! usual addresses, and each account's applications reading from private app-server addresses.
//!
//! Files are saved API responses as a collector writes them: one gzip file per account and
//! hour, `DataAudit/<account>/<YYYY>/<MM>/<DD>/DescribeAuditLogs_<YYYYMMDDTHH>.ndjson.gz`, one
//! response page (at most 50 items, `CurrentPage`, `PageSize`, `TotalCount`, `RequestId`)
//! per line.
//!
//! Labelled anomalies ([`AuditAnomaly`]), `anomalies` of each kind:
//! * `new_client_ip`: a database user with history reads for an hour from an address in a
//!   network no one in the world uses (IpInsight with `--table audit_logs` must find it);
//! * `bulk_read`: a read of 100,000 to 500,000 rows of a sensitive-data model;
//! * `destructive`: `DROP TABLE` or `DELETE` without `WHERE`;
//! * `failed_burst`: eight failed logins within three minutes from one address.

use std::fs;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::{GenConfig, GenError, identities};

/// Items per saved response page (the API's maximum page size).
pub const PAGE_SIZE: usize = 50;

/// Kinds of labelled anomaly in the audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAnomaly {
    NewClientIp,
    BulkRead,
    Destructive,
    FailedBurst,
}

impl AuditAnomaly {
    pub const ALL: [AuditAnomaly; 4] = [
        AuditAnomaly::NewClientIp,
        AuditAnomaly::BulkRead,
        AuditAnomaly::Destructive,
        AuditAnomaly::FailedBurst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAnomaly::NewClientIp => "new_client_ip",
            AuditAnomaly::BulkRead => "bulk_read",
            AuditAnomaly::Destructive => "destructive",
            AuditAnomaly::FailedBurst => "failed_burst",
        }
    }
}

/// One injected anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLabel {
    pub kind: AuditAnomaly,
    pub account: String,
    pub user: String,
    pub instance: String,
    pub client_ip: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub logs: u32,
}

impl AuditLabel {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "table": "audit_logs",
            "account": self.account,
            "UserName": self.user,
            "InstanceName": self.instance,
            "ClientIp": self.client_ip,
            "start": self.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "end": self.end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "logs": self.logs,
        })
    }
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct AuditStats {
    pub logs: u64,
    pub files: u64,
    pub bytes_uncompressed: u64,
    pub labels: Vec<AuditLabel>,
}

/// A database user of the world.
struct DbUser {
    account: usize,
    name: String,
    ips: Vec<String>,
    /// Instances it uses (indexes into the account's instances).
    instances: Vec<usize>,
    /// An application account (reads all day) rather than a person (business hours).
    app: bool,
}

struct Account {
    id: String,
    instances: Vec<(String, &'static str, i64, &'static str)>,
}

const PRODUCTS: [(&str, i64, &str); 4] = [
    ("RDS", 5, "MySQL"),
    ("PolarDB", 8, "PolarDB"),
    ("RDS", 5, "PostgreSQL"),
    ("MongoDB", 11, "MongoDB"),
];
const TABLES: [&str; 8] = [
    "orders",
    "customers",
    "payments",
    "products",
    "sessions",
    "invoices",
    "addresses",
    "audit_trail",
];
const MODELS: [&str; 4] = ["Bank Card", "Identity Card", "Mobile Phone", "Email"];
const CLIENTS: [&str; 4] = ["mysql-connector-j", "mysql", "psql", "pymongo"];

fn world(cfg: &GenConfig) -> (Vec<Account>, Vec<DbUser>) {
    let ids = identities(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xda7a_a0d1);
    let mut accounts: Vec<Account> = Vec::new();
    for id in &ids {
        if accounts.iter().any(|a| a.id == id.account) {
            continue;
        }
        let instances = (0..3)
            .map(|k| {
                let (code, pid, db) = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
                (
                    format!("rm-{}{k}", &id.account[id.account.len() - 6..]),
                    code,
                    pid,
                    db,
                )
            })
            .collect();
        accounts.push(Account {
            id: id.account.clone(),
            instances,
        });
    }
    let mut users = Vec::new();
    for (a, acc) in accounts.iter().enumerate() {
        // The people: the account's RAM users, by their own names, from their usual addresses.
        for id in ids
            .iter()
            .filter(|i| i.account == acc.id && i.kind == "ram-user")
            .take(6)
        {
            users.push(DbUser {
                account: a,
                name: id.user_name.clone(),
                ips: id.usual_ips.clone(),
                instances: vec![rng.random_range(0..acc.instances.len())],
                app: false,
            });
        }
        // The applications, from private app-server addresses.
        for name in ["app_ro", "app_rw", "etl"] {
            let ips = (0..2)
                .map(|_| {
                    format!(
                        "10.{}.{}.{}",
                        a % 256,
                        rng.random_range(0..=255u8),
                        rng.random_range(1..=250u8)
                    )
                })
                .collect();
            users.push(DbUser {
                account: a,
                name: name.to_owned(),
                ips,
                instances: (0..acc.instances.len()).collect(),
                app: true,
            });
        }
    }
    (accounts, users)
}

struct Log<'a> {
    user: &'a DbUser,
    instance: usize,
    ip: String,
    ms: i64,
    sql: String,
    operate: &'static str,
    table: &'static str,
    rows: i64,
    level: u8,
    rule: (&'static str, &'static str),
    model: &'static str,
    ok: bool,
}

fn item(acc: &Account, l: &Log<'_>, rng: &mut ChaCha8Rng) -> Value {
    let (instance, code, pid, db) = &acc.instances[l.instance];
    let level = l.level.to_string();
    let level_name = ["Low", "Medium", "High"][usize::from(l.level.clamp(1, 3) - 1)];
    let description = format!(
        "{db} {}",
        ["primary", "replica", "reporting"][l.instance % 3]
    );
    json!({
        "LogTime": l.ms,
        "CreationTime": l.ms + rng.random_range(200..3000),
        "UserName": l.user.name,
        "UserId": format!("27{:014}", l.user.name.len() * 7919 + l.user.account * 104_729),
        "ClientIp": l.ip,
        "ClientPort": rng.random_range(30000..61000).to_string(),
        "ClientUa": CLIENTS[(l.user.name.len() + l.instance) % CLIENTS.len()],
        "IpType": "default",
        "InstanceName": instance,
        "InstanceDescription": description,
        "DatabaseName": "shop",
        "TableName": l.table,
        "ColumnName": if l.model.is_empty() { "" } else { "card_no" },
        "PackageName": "",
        "OssObjectKey": "",
        "DbType": db,
        "ProductCode": code,
        "ProductId": pid,
        "OperateType": l.operate,
        "SqlText": l.sql,
        "EffectRow": l.rows,
        "ExecuteTime": rng.random_range(1..400),
        "ExecuteStatus": i64::from(l.ok),
        "Message": if l.ok { "success" } else { "Access denied" },
        "DataSet": "",
        "RuleId": l.rule.0,
        "RuleName": l.rule.1,
        "RuleCategory": "10",
        "WarnLevel": level,
        "WarnLevelName": level_name,
        "ModelName": l.model,
        "LogSource": "RDS_AUDIT",
        "InWhiteList": false,
        "MemberAccount": acc.id,
        "InstanceAuditStatus": "2",
        "RamConsoleLink": "",
    })
}

/// An ordinary statement of a user.
fn ordinary<'a>(u: &'a DbUser, ms: i64, rng: &mut ChaCha8Rng) -> Log<'a> {
    let table = TABLES[rng.random_range(0..TABLES.len() - 1)];
    let instance = u.instances[rng.random_range(0..u.instances.len())];
    let ip = u.ips[rng.random_range(0..u.ips.len())].clone();
    let r: f64 = rng.random();
    let id = rng.random_range(1..1_000_000);
    let (sql, operate, rows) = if r < 0.80 {
        (
            format!("SELECT * FROM {table} WHERE id = {id}"),
            "Select",
            rng.random_range(0..200),
        )
    } else if r < 0.90 {
        (
            format!("UPDATE {table} SET updated_at = now() WHERE id = {id}"),
            "Update",
            1,
        )
    } else if r < 0.97 {
        (
            format!("INSERT INTO {table} VALUES ({id}, 'x')"),
            "Insert",
            1,
        )
    } else {
        (format!("DELETE FROM {table} WHERE id = {id}"), "Delete", 1)
    };
    let ok = rng.random::<f64>() >= 0.01;
    Log {
        user: u,
        instance,
        ip,
        ms,
        sql,
        operate,
        table,
        rows: if ok { rows } else { 0 },
        level: 1,
        rule: ("r-100", "all statements"),
        model: "",
        ok,
    }
}

/// Write `n` audit logs (plus the anomalies) under `out/DataAudit`.
pub fn generate_audit_logs(
    cfg: &GenConfig,
    n: u64,
    anomalies: u32,
    out: &Path,
) -> Result<AuditStats, GenError> {
    let (accounts, users) = world(cfg);
    if users.is_empty() {
        return Err(GenError::Config("the world has no database users".into()));
    }
    let days = i64::from(cfg.days.max(1));
    let start = Utc.from_utc_datetime(&cfg.start.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xa0d1_7109);
    let mut logs: Vec<(usize, Value)> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        // Users by a skewed weight (applications most), people in business hours.
        let u = &users[((rng.random::<f64>().powi(2)) * users.len() as f64) as usize % users.len()];
        let day = rng.random_range(0..days);
        let secs = if u.app {
            rng.random_range(0..86_400)
        } else {
            rng.random_range(8 * 3600..19 * 3600)
        };
        let ms = (start + Duration::days(day) + Duration::seconds(secs)).timestamp_millis()
            + rng.random_range(0..1000);
        let l = ordinary(u, ms, &mut rng);
        let v = item(&accounts[u.account], &l, &mut rng);
        logs.push((u.account, v));
    }
    let mut labels = Vec::new();
    // Anomalies come in the second half of the history, so the users have a baseline.
    let mut arng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xbad_d0c5);
    for k in 0..anomalies {
        for kind in AuditAnomaly::ALL {
            // Application users: they have history on their first instance every day.
            let apps: Vec<&DbUser> = users.iter().filter(|u| u.app).collect();
            let u = apps[(k as usize * 7 + kind as usize) % apps.len()];
            let day = days / 2 + arng.random_range(0..(days - days / 2).max(1));
            let t0 = start
                + Duration::days(day)
                + Duration::seconds(arng.random_range(9 * 3600..17 * 3600));
            let instance = u.instances[0];
            let mut injected: Vec<Log<'_>> = Vec::new();
            let ip = match kind {
                AuditAnomaly::NewClientIp | AuditAnomaly::FailedBurst => format!(
                    "{}.{}.{}.{}",
                    [5, 31, 77, 91, 185, 212][(k as usize + kind as usize) % 6],
                    arng.random_range(0..=255u8),
                    arng.random_range(0..=255u8),
                    arng.random_range(1..=250u8)
                ),
                _ => u.ips[0].clone(),
            };
            match kind {
                AuditAnomaly::NewClientIp => {
                    for s in 0..6 {
                        let mut l = ordinary(
                            u,
                            (t0 + Duration::minutes(10 * s)).timestamp_millis(),
                            &mut arng,
                        );
                        l.ip = ip.clone();
                        l.instance = instance;
                        injected.push(l);
                    }
                }
                AuditAnomaly::BulkRead => {
                    let table = ["customers", "payments"][k as usize % 2];
                    injected.push(Log {
                        user: u,
                        instance,
                        ip: ip.clone(),
                        ms: t0.timestamp_millis(),
                        sql: format!("SELECT * FROM {table}"),
                        operate: "Select",
                        table,
                        rows: arng.random_range(100_000..500_000),
                        level: 3,
                        rule: ("r-201", "bulk read of sensitive columns"),
                        model: MODELS[k as usize % MODELS.len()],
                        ok: true,
                    });
                }
                AuditAnomaly::Destructive => {
                    let (sql, operate, table, rows) = if k % 2 == 0 {
                        ("DROP TABLE orders_archive", "Drop", "orders_archive", 0)
                    } else {
                        ("DELETE FROM sessions", "Delete", "sessions", 40_000)
                    };
                    injected.push(Log {
                        user: u,
                        instance,
                        ip: ip.clone(),
                        ms: t0.timestamp_millis(),
                        sql: sql.to_owned(),
                        operate,
                        table,
                        rows,
                        level: 3,
                        rule: ("r-300", "destructive statement"),
                        model: "",
                        ok: true,
                    });
                }
                AuditAnomaly::FailedBurst => {
                    for s in 0..8 {
                        injected.push(Log {
                            user: u,
                            instance,
                            ip: ip.clone(),
                            ms: (t0 + Duration::seconds(20 * s)).timestamp_millis(),
                            sql: "login".to_owned(),
                            operate: "Login",
                            table: "",
                            rows: 0,
                            level: 2,
                            rule: ("r-400", "failed login"),
                            model: "",
                            ok: false,
                        });
                    }
                }
            }
            let first = injected.first().map_or(0, |l| l.ms);
            let last = injected.last().map_or(0, |l| l.ms);
            labels.push(AuditLabel {
                kind,
                account: accounts[u.account].id.clone(),
                user: u.name.clone(),
                instance: accounts[u.account].instances[instance].0.clone(),
                client_ip: ip,
                start: DateTime::from_timestamp_millis(first - first % 1000).unwrap_or_default(),
                end: DateTime::from_timestamp_millis(last - last % 1000).unwrap_or_default(),
                logs: injected.len() as u32,
            });
            for l in &injected {
                logs.push((u.account, item(&accounts[u.account], l, &mut arng)));
            }
        }
    }
    // One file per account and hour, pages of 50 items per line.
    let ms_of = |v: &Value| v["LogTime"].as_i64().unwrap_or(0);
    logs.sort_by_key(|(a, v)| (*a, ms_of(v) / 3_600_000, ms_of(v)));
    let mut stats = AuditStats {
        labels,
        ..Default::default()
    };
    let mut i = 0;
    let mut request = 0u64;
    while i < logs.len() {
        let (a, hour) = (logs[i].0, ms_of(&logs[i].1) / 3_600_000);
        let mut j = i;
        while j < logs.len() && logs[j].0 == a && ms_of(&logs[j].1) / 3_600_000 == hour {
            j += 1;
        }
        let t = DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
        let dir = out.join(format!(
            "DataAudit/{}/{:04}/{:02}/{:02}",
            accounts[a].id,
            t.year(),
            t.month(),
            t.day()
        ));
        fs::create_dir_all(&dir).map_err(|e| GenError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let path = dir.join(format!(
            "DescribeAuditLogs_{}.ndjson.gz",
            t.format("%Y%m%dT%H")
        ));
        let io = |e| GenError::Io {
            path: path.clone(),
            source: e,
        };
        let mut w = GzEncoder::new(
            std::io::BufWriter::new(fs::File::create(&path).map_err(io)?),
            Compression::fast(),
        );
        let items: Vec<&Value> = logs[i..j].iter().map(|(_, v)| v).collect();
        for (p, page) in items.chunks(PAGE_SIZE).enumerate() {
            request += 1;
            let line = serde_json::to_string(&json!({
                "RequestId": format!("{:08X}-0000-4000-8000-{:012X}", cfg.seed as u32, request),
                "CurrentPage": p + 1,
                "PageSize": PAGE_SIZE,
                "TotalCount": items.len(),
                "Items": page,
            }))
            .map_err(|e| GenError::Config(e.to_string()))?;
            w.write_all(line.as_bytes()).map_err(io)?;
            w.write_all(b"\n").map_err(io)?;
            stats.bytes_uncompressed += line.len() as u64 + 1;
        }
        w.finish().and_then(|mut b| b.flush()).map_err(io)?;
        stats.files += 1;
        stats.logs += (j - i) as u64;
        i = j;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_exact_labelled_and_deterministic() {
        let cfg = GenConfig {
            days: 10,
            ..Default::default()
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = generate_audit_logs(&cfg, 3000, 2, a.path()).unwrap();
        let sb = generate_audit_logs(&cfg, 3000, 2, b.path()).unwrap();
        // 6 + 1 + 1 + 8 injected logs per round of anomalies.
        assert_eq!(sa.logs, 3000 + 2 * 16);
        assert_eq!(sa.labels.len(), 8);
        assert_eq!(sa.labels, sb.labels);
        assert_eq!(sa.bytes_uncompressed, sb.bytes_uncompressed);
    }
}
