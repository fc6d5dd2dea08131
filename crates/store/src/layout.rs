//! The one owner of the partition layout: partition values to a relative path and back.
//!
//! `events/region=<enc(region)>/eventDate=<YYYY-MM-DD>/`. The region comes from event content,
//! which an attacker controls, so it is percent-encoded: every byte outside `[a-z0-9-]` becomes
//! `%XX` (upper-case hex). The encoding is a bijection, the encoded form never contains `/`,
//! `\`, `.` or a control character, and so can never name a parent directory or escape the
//! partition directory. A missing region is the Hive default partition, which no encoded value
//! can collide with (it contains `_`, which is always encoded).

use std::fmt;

use chrono::NaiveDate;

use crate::error::{Result, StoreError};
use crate::schema::{PART_DATE, PART_REGION};

/// Top-level directory of event files inside a store.
pub const EVENTS_DIR: &str = "events";
/// Top-level directory of data-audit log files inside a store.
pub const AUDIT_LOGS_DIR: &str = "audit_logs";

/// The partition directory of the audit logs of one UTC date (`audit_logs/logDate=<date>`),
/// relative to the store root. Only a date chooses it: no record text reaches the path.
pub fn audit_log_dir(date: NaiveDate) -> String {
    format!(
        "{AUDIT_LOGS_DIR}/{}={}",
        crate::schema::AUDIT_PART_DATE,
        date.format("%Y-%m-%d")
    )
}

/// Directory name value for a missing region (Hive's convention, read as NULL by Spark).
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// Longest region accepted, in bytes (regions are short names such as `cn-hangzhou`).
pub const MAX_REGION_BYTES: usize = 64;

/// Where an event lives: its region and the UTC date of its eventTime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub region: Option<String>,
    pub date: NaiveDate,
}

impl PartitionKey {
    /// A key; an empty region counts as missing.
    pub fn new(region: Option<&str>, date: NaiveDate) -> Self {
        PartitionKey {
            region: region.filter(|r| !r.is_empty()).map(str::to_owned),
            date,
        }
    }

    /// The partition directory, relative to the store root, `/`-separated.
    pub fn dir(&self) -> String {
        format!(
            "{EVENTS_DIR}/{PART_REGION}={}/{PART_DATE}={}",
            encode_region(self.region.as_deref()),
            self.date.format("%Y-%m-%d")
        )
    }

    /// Parse a partition directory (as produced by [`PartitionKey::dir`]) back into values.
    /// Trailing components (a file name) are ignored.
    pub fn parse_dir(rel: &str) -> Result<Self> {
        let mut parts = rel.split('/');
        let bad = |c: &str, reason: &str| StoreError::BadPartition {
            component: c.to_owned(),
            reason: reason.to_owned(),
        };
        match parts.next() {
            Some(EVENTS_DIR) => {}
            other => return Err(bad(other.unwrap_or(""), "expected `events`")),
        }
        let region_part = parts.next().unwrap_or("");
        let region = region_part
            .strip_prefix(PART_REGION)
            .and_then(|r| r.strip_prefix('='))
            .ok_or_else(|| bad(region_part, "expected `region=<value>`"))?;
        let date_part = parts.next().unwrap_or("");
        let date = date_part
            .strip_prefix(PART_DATE)
            .and_then(|r| r.strip_prefix('='))
            .ok_or_else(|| bad(date_part, "expected `eventDate=<YYYY-MM-DD>`"))?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|e| bad(date_part, &e.to_string()))?;
        Ok(PartitionKey {
            region: decode_region(region)?,
            date,
        })
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.region.as_deref().unwrap_or("(no region)"),
            self.date
        )
    }
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// Encode a region for use as one path component.
pub fn encode_region(region: Option<&str>) -> String {
    let Some(region) = region.filter(|r| !r.is_empty()) else {
        return DEFAULT_PARTITION.to_owned();
    };
    let mut out = String::with_capacity(region.len());
    for &b in region.as_bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

/// Decode a path component produced by [`encode_region`]. Strict: anything `encode_region`
/// would not have produced is an error, so the mapping stays one-to-one.
pub fn decode_region(component: &str) -> Result<Option<String>> {
    if component == DEFAULT_PARTITION {
        return Ok(None);
    }
    let bad = |reason: &str| StoreError::BadPartition {
        component: component.to_owned(),
        reason: reason.to_owned(),
    };
    if component.is_empty() {
        return Err(bad("empty region"));
    }
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_plain(b) {
            out.push(b);
            i += 1;
        } else if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) else {
                return Err(bad("bad %-escape"));
            };
            let v = h << 4 | l;
            if is_plain(v) {
                return Err(bad("needless %-escape"));
            }
            out.push(v);
            i += 3;
        } else {
            return Err(bad("character that the encoding never produces"));
        }
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| bad("not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 12, 17).unwrap()
    }

    #[test]
    fn plain_regions_stay_readable() {
        let k = PartitionKey::new(Some("cn-hangzhou"), date());
        assert_eq!(k.dir(), "events/region=cn-hangzhou/eventDate=2020-12-17");
        assert_eq!(PartitionKey::parse_dir(&k.dir()).unwrap(), k);
    }

    #[test]
    fn hostile_regions_stay_inside() {
        for r in [
            "../../x",
            "a/b",
            "%2e%2e",
            "..",
            ".",
            "\\..\\",
            "a\0b",
            "__HIVE_DEFAULT_PARTITION__",
            "région",
            "US-EAST-1",
        ] {
            let enc = encode_region(Some(r));
            assert!(
                !enc.contains('/') && !enc.contains('.') && !enc.contains('\\'),
                "{r} -> {enc}"
            );
            assert_eq!(decode_region(&enc).unwrap().as_deref(), Some(r));
        }
        assert_eq!(encode_region(Some("../../x")), "%2E%2E%2F%2E%2E%2Fx");
        assert_eq!(encode_region(None), DEFAULT_PARTITION);
        assert_eq!(encode_region(Some("")), DEFAULT_PARTITION);
    }

    #[test]
    fn decode_rejects_what_encode_never_makes() {
        for c in ["", "a/b", "..", "%2e", "%61", "%4", "%", "A", "%C3"] {
            assert!(decode_region(c).is_err(), "{c:?} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn region_round_trips_and_never_escapes(region in any::<String>(), days in 0i64..40000) {
            let d = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let key = PartitionKey::new(Some(&region), d);
            let dir = key.dir();
            // Exactly three components, none of them `.` or `..`, all under events/.
            let comps: Vec<&str> = dir.split('/').collect();
            prop_assert_eq!(comps.len(), 3);
            prop_assert_eq!(comps[0], EVENTS_DIR);
            for c in &comps {
                prop_assert!(*c != "." && *c != ".." && !c.is_empty());
                prop_assert!(!c.chars().any(|ch| ch.is_control() || ch == '\\'));
            }
            let joined = std::path::Path::new("/store").join(&dir);
            prop_assert!(joined.starts_with("/store/events"));
            prop_assert_eq!(PartitionKey::parse_dir(&dir).unwrap(), key);
        }

        #[test]
        fn hostile_ascii_round_trips(region in "[./%\\\\a-zA-Z0-9_ -]{1,40}") {
            let enc = encode_region(Some(&region));
            prop_assert!(!enc.contains('/') && !enc.contains('.'));
            prop_assert_eq!(decode_region(&enc).unwrap(), Some(region));
        }
    }
}
