//! Who owns an address, and where it is: IP-to-ASN and IP-to-country databases.
//!
//! * ASN: a MaxMind DB (`.mmdb`: GeoLite2-ASN, DB-IP's ASN lite) or a CSV in the widely
//!   published `range_start,range_end,asn,organization` layout (inclusive ranges, no header,
//!   IPv4 and IPv6, plain or gzip: ip-location-db, DB-IP lite), told apart by content.
//! * Country: a MaxMind DB with a `country` record (GeoLite2-City or -Country).
//!
//! The SQL functions `ip_asn(ip)`, `ip_org(ip)` and `ip_country(ip)` ([`register`]) and the
//! IP insight job read them through [`IpIntel`]. A function whose database is not configured
//! returns NULL and leaves a notice ([`IpIntel::take_notices`]) saying which flag enables it.
//! trail ships no database; users bring their own.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::ip::parse_ip;

/// Errors opening a database: each names the file and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{}: cannot read the IP database", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: not a usable {what} database ({reason}); give a MaxMind DB (.mmdb) file{}",
        path.display(),
        if *what == "ASN" { " or a CSV of range_start,range_end,asn,organization" } else { "" }
    )]
    Bad {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
}

/// An autonomous system: its number and organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asn {
    pub number: u32,
    pub organization: Arc<str>,
}

/// Ranges sorted by start. The published tables do not overlap; where a file does, an address
/// belongs to the range with the greatest start at or below it, if that range reaches it.
#[derive(Debug, Default)]
struct RangeTable<T> {
    ranges: Vec<(T, T, u32)>,
}

impl<T: Ord + Copy> RangeTable<T> {
    fn finish(&mut self) {
        self.ranges.sort_unstable_by_key(|r| r.0);
    }

    fn find(&self, ip: T) -> Option<u32> {
        let i = self.ranges.partition_point(|r| r.0 <= ip);
        let (start, end, asn) = *self.ranges.get(i.checked_sub(1)?)?;
        (start <= ip && ip <= end).then_some(asn)
    }
}

/// An ASN table read from CSV.
#[derive(Debug, Default)]
struct AsnTable {
    v4: RangeTable<u32>,
    v6: RangeTable<u128>,
    orgs: HashMap<u32, Arc<str>>,
}

impl AsnTable {
    fn parse(text: &str, path: &Path) -> Result<AsnTable, IntelError> {
        let mut t = AsnTable::default();
        let mut interned: std::collections::HashSet<Arc<str>> = Default::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| IntelError::Bad {
                path: path.to_path_buf(),
                what: "ASN",
                reason: format!("line {}: {reason}: `{}`", n + 1, line.escape_debug()),
            };
            let mut parts = line.splitn(4, ',');
            let (Some(a), Some(b), Some(asn)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected range_start,range_end,asn,organization"));
            };
            let org = parts.next().unwrap_or("").trim();
            let org = org
                .strip_prefix('"')
                .and_then(|o| o.strip_suffix('"'))
                .map_or_else(|| org.to_owned(), |o| o.replace("\"\"", "\""));
            let asn: u32 = asn
                .trim()
                .trim_start_matches("AS")
                .parse()
                .map_err(|_| bad("the ASN is not a number"))?;
            let org = match interned.get(org.as_str()) {
                Some(o) => Arc::clone(o),
                None => {
                    let o: Arc<str> = Arc::from(org.as_str());
                    interned.insert(Arc::clone(&o));
                    o
                }
            };
            t.orgs.entry(asn).or_insert(org);
            match (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) {
                (Ok(IpAddr::V4(s)), Ok(IpAddr::V4(e))) if s <= e => {
                    t.v4.ranges.push((u32::from(s), u32::from(e), asn));
                }
                (Ok(IpAddr::V6(s)), Ok(IpAddr::V6(e))) if s <= e => {
                    t.v6.ranges.push((u128::from(s), u128::from(e), asn));
                }
                _ => {
                    return Err(bad(
                        "not a range of two addresses of one family, start first",
                    ));
                }
            }
        }
        if t.v4.ranges.is_empty() && t.v6.ranges.is_empty() {
            return Err(IntelError::Bad {
                path: path.to_path_buf(),
                what: "ASN",
                reason: "no ranges in it".into(),
            });
        }
        t.v4.finish();
        t.v6.finish();
        Ok(t)
    }

    fn lookup(&self, ip: IpAddr) -> Option<Asn> {
        let number = match ip {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4))?,
            IpAddr::V6(v6) => self.v6.find(u128::from(v6))?,
        };
        Some(Asn {
            number,
            organization: self
                .orgs
                .get(&number)
                .cloned()
                .unwrap_or_else(|| Arc::from("")),
        })
    }
}

enum AsnSource {
    Table(AsnTable),
    Mmdb(maxminddb::Reader<Vec<u8>>),
}

/// The IP databases of a session (none, either or both).
#[derive(Default)]
pub struct IpIntel {
    /// Tried in order (e.g. an IPv4 table and an IPv6 table).
    asn: Vec<(AsnSource, PathBuf)>,
    geo: Option<(maxminddb::Reader<Vec<u8>>, PathBuf)>,
    /// Set when a function needed a database that is not configured.
    missing_asn: AtomicBool,
    missing_geo: AtomicBool,
    notified: Mutex<(bool, bool)>,
}

impl std::fmt::Debug for IpIntel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpIntel")
            .field("asn", &self.asn.iter().map(|(_, p)| p).collect::<Vec<_>>())
            .field("geo", &self.geo.as_ref().map(|(_, p)| p))
            .finish()
    }
}

/// The MaxMind DB format's metadata marker (`\xab\xcd\xef` + `MaxMind.com`).
const MMDB_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

fn read_file(path: &Path) -> Result<Vec<u8>, IntelError> {
    let io = |source| IntelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        return Ok(out);
    }
    Ok(bytes)
}

fn is_mmdb(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    tail.windows(MMDB_MARKER.len()).any(|w| w == MMDB_MARKER)
}

fn open_mmdb(
    bytes: Vec<u8>,
    path: &Path,
    what: &'static str,
) -> Result<maxminddb::Reader<Vec<u8>>, IntelError> {
    let bad = |reason: String| IntelError::Bad {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let reader = maxminddb::Reader::from_source(bytes).map_err(|e| bad(e.to_string()))?;
    reader.verify().map_err(|e| bad(e.to_string()))?;
    Ok(reader)
}

impl IpIntel {
    /// Open the databases given: ASN databases (tried in order, e.g. an IPv4 and an IPv6
    /// table) and a country database.
    pub fn open(asn: &[PathBuf], geo: Option<&Path>) -> Result<IpIntel, IntelError> {
        let mut intel = IpIntel::default();
        for path in asn {
            let bytes = read_file(path)?;
            let source = if is_mmdb(&bytes) {
                let reader = open_mmdb(bytes, path, "ASN")?;
                if !reader.metadata().database_type.contains("ASN") {
                    return Err(IntelError::Bad {
                        path: path.to_path_buf(),
                        what: "ASN",
                        reason: format!(
                            "it is a {} database, without ASN records",
                            reader.metadata().database_type
                        ),
                    });
                }
                AsnSource::Mmdb(reader)
            } else {
                let text = String::from_utf8(bytes).map_err(|_| IntelError::Bad {
                    path: path.to_path_buf(),
                    what: "ASN",
                    reason: "neither a MaxMind DB nor UTF-8 text".into(),
                })?;
                AsnSource::Table(AsnTable::parse(&text, path)?)
            };
            intel.asn.push((source, path.to_path_buf()));
        }
        if let Some(path) = geo {
            let bytes = read_file(path)?;
            if !is_mmdb(&bytes) {
                return Err(IntelError::Bad {
                    path: path.to_path_buf(),
                    what: "country",
                    reason: "not a MaxMind DB file".into(),
                });
            }
            let reader = open_mmdb(bytes, path, "country")?;
            intel.geo = Some((reader, path.to_path_buf()));
        }
        Ok(intel)
    }

    /// Whether an ASN database is configured.
    pub fn has_asn(&self) -> bool {
        !self.asn.is_empty()
    }

    /// Whether a country database is configured.
    pub fn has_geo(&self) -> bool {
        self.geo.is_some()
    }

    /// The autonomous system an address belongs to.
    pub fn asn(&self, ip: IpAddr) -> Option<Asn> {
        if self.asn.is_empty() {
            self.missing_asn.store(true, Ordering::Relaxed);
            return None;
        }
        self.asn.iter().find_map(|(source, _)| match source {
            AsnSource::Table(t) => t.lookup(ip),
            AsnSource::Mmdb(r) => {
                let rec = r
                    .lookup(ip)
                    .ok()?
                    .decode::<maxminddb::geoip2::Asn>()
                    .ok()??;
                Some(Asn {
                    number: rec.autonomous_system_number?,
                    organization: Arc::from(rec.autonomous_system_organization.unwrap_or("")),
                })
            }
        })
    }

    /// The ISO 3166-1 code of the country an address is in.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let Some((reader, _)) = &self.geo else {
            self.missing_geo.store(true, Ordering::Relaxed);
            return None;
        };
        reader
            .lookup(ip)
            .ok()?
            .decode_path::<String>(&maxminddb::path!["country", "iso_code"])
            .ok()?
    }

    /// Notices owed to the user since the last call, each given once per session: a function
    /// ran without the database it needs.
    pub fn take_notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(mut told) = self.notified.lock() else {
            return out;
        };
        if !told.0 && self.missing_asn.load(Ordering::Relaxed) {
            told.0 = true;
            out.push(
                "ip_asn() and ip_org() are NULL for every address: no ASN database is \
                 configured (give --asn-db FILE or set TRAIL_ASN_DB: a GeoLite2-ASN .mmdb or a \
                 range_start,range_end,asn,organization CSV)"
                    .to_owned(),
            );
        }
        if !told.1 && self.missing_geo.load(Ordering::Relaxed) {
            told.1 = true;
            out.push(
                "ip_country() is NULL for every address: no country database is configured \
                 (give --geo-db FILE or set TRAIL_GEO_DB: a GeoLite2-City or -Country .mmdb)"
                    .to_owned(),
            );
        }
        out
    }
}

/// Documented examples of the functions with the MaxMind test databases (`GeoLite2-ASN-Test`
/// as the ASN database, `GeoIP2-Country-Test` as the country database); each runs as a test.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("ip_asn('1.128.0.1')", "1221"),
    ("ip_org('1.128.0.1')", "Telstra Pty Ltd"),
    ("ip_asn('2600:6000::1')", "237"),
    ("ip_country('81.2.69.160')", "GB"),
    ("ip_country('2001:218::1')", "JP"),
    ("ip_asn('Internal')", "NULL"),
    ("ip_org('10.0.0.1')", "NULL"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Asn,
    Org,
    Country,
}

struct IntelFn {
    which: Which,
    signature: Signature,
    intel: Arc<IpIntel>,
}

impl std::fmt::Debug for IntelFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntelFn")
            .field("which", &self.which)
            .finish()
    }
}

impl PartialEq for IntelFn {
    fn eq(&self, other: &Self) -> bool {
        self.which == other.which && Arc::ptr_eq(&self.intel, &other.intel)
    }
}

impl Eq for IntelFn {}

impl std::hash::Hash for IntelFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.which.hash(state);
    }
}

impl IntelFn {
    /// (ASN, organization or country) of one text value.
    fn resolve(&self, s: &str) -> (Option<i64>, Option<String>) {
        let Some(ip) = parse_ip(s) else {
            return (None, None);
        };
        match self.which {
            Which::Asn | Which::Org => match self.intel.asn(ip) {
                Some(a) => (Some(i64::from(a.number)), Some(a.organization.to_string())),
                None => (None, None),
            },
            Which::Country => (None, self.intel.country(ip)),
        }
    }
}

impl ScalarUDFImpl for IntelFn {
    fn name(&self) -> &str {
        match self.which {
            Which::Asn => "ip_asn",
            Which::Org => "ip_org",
            Which::Country => "ip_country",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.which {
            Which::Asn => DataType::Int64,
            Which::Org | Which::Country => DataType::Utf8,
        })
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        match args {
            [t] if t.is_null()
                || matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) =>
            {
                Ok(vec![DataType::Utf8])
            }
            _ => plan_err!("{}(ip) takes one text argument", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arg = args.args[0].clone().into_array(rows)?;
        let arg = cast(&arg, &DataType::Utf8)?;
        let text = arg.as_string::<i32>();
        // One lookup per distinct address of the batch.
        let mut cache: HashMap<&str, (Option<i64>, Option<String>)> = HashMap::new();
        let mut values: Vec<(Option<i64>, Option<String>)> = Vec::with_capacity(rows);
        for i in 0..text.len() {
            if text.is_null(i) {
                values.push((None, None));
                continue;
            }
            let s = text.value(i);
            let v = match cache.get(s) {
                Some(v) => v.clone(),
                None => {
                    let v = self.resolve(s);
                    cache.insert(s, v.clone());
                    v
                }
            };
            values.push(v);
        }
        let out: ArrayRef = match self.which {
            Which::Asn => Arc::new(values.iter().map(|v| v.0).collect::<Int64Array>()),
            Which::Org | Which::Country => Arc::new(
                values
                    .iter()
                    .map(|v| v.1.as_deref().filter(|s| !s.is_empty()))
                    .collect::<StringArray>(),
            ),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Register `ip_asn`, `ip_org` and `ip_country` with a session.
pub fn register(ctx: &SessionContext, intel: &Arc<IpIntel>) {
    for which in [Which::Asn, Which::Org, Which::Country] {
        ctx.register_udf(ScalarUDF::from(IntelFn {
            which,
            signature: Signature::user_defined(Volatility::Immutable),
            intel: Arc::clone(intel),
        }));
    }
}
