#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! IP intelligence in SQL: `ip_asn`, `ip_org` and `ip_country` with MaxMind DB files, with
//! the `range_start,range_end,asn,organization` CSV layout, without any database (NULL and a
//! notice), with missing or broken files (a clear error naming the file), and with the real
//! whole-Internet ASN table on real CloudTrail events.

use std::io::Write;
use std::path::{Path, PathBuf};

mod common;
use common::*;

fn maxmind(name: &str) -> Option<PathBuf> {
    shared_data().map(|d| d.join("geoip/maxmind-test-data").join(name))
}

fn sql_csv(store: &Path, extra: &[&str], sql: &str) -> std::process::Output {
    let mut args = vec!["sql", "--format", "csv", "-c", sql];
    args.extend_from_slice(extra);
    run_on(store, &args)
}

#[test]
fn documented_examples_with_the_maxmind_test_databases() {
    let (Some(asn), Some(country)) = (
        maxmind("GeoLite2-ASN-Test.mmdb"),
        maxmind("GeoIP2-Country-Test.mmdb"),
    ) else {
        return;
    };
    let store = fixture_store();
    for (expr, want) in trail_query::ipintel::EXAMPLES {
        let o = sql_csv(
            store,
            &[
                "--asn-db",
                asn.to_str().unwrap(),
                "--geo-db",
                country.to_str().unwrap(),
            ],
            &format!("SELECT CAST({expr} AS VARCHAR) AS v"),
        );
        assert!(o.status.success(), "{expr}: {}", stderr(&o));
        let got = stdout(&o).lines().nth(1).unwrap_or("").to_owned();
        assert_eq!(got, *want, "{expr}");
    }
    // A City database answers ip_country too.
    let city = maxmind("GeoLite2-City-Test.mmdb").unwrap();
    let o = sql_csv(
        store,
        &["--geo-db", city.to_str().unwrap()],
        "SELECT ip_country('89.160.20.128') AS c",
    );
    assert_eq!(stdout(&o), "c\nSE\n", "{}", stderr(&o));
}

#[test]
fn the_csv_layout_plain_gzip_and_split_by_family() {
    let dir = tempfile::tempdir().unwrap();
    let v4 = dir.path().join("asn-ipv4.csv");
    std::fs::write(
        &v4,
        "198.51.100.0,198.51.100.255,64500,\"Example Net, Inc.\"\n\
         203.0.113.0,203.0.113.127,64501,Documentation \"Two\"\n",
    )
    .unwrap();
    let v6 = dir.path().join("asn-ipv6.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64502,Six Networks\n")
        .unwrap();
    std::fs::write(&v6, gz.finish().unwrap()).unwrap();
    let o = sql_csv(
        fixture_store(),
        &[
            "--asn-db",
            v4.to_str().unwrap(),
            "--asn-db",
            v6.to_str().unwrap(),
        ],
        "SELECT ip_asn(a) AS asn, ip_org(a) AS org FROM (VALUES ('198.51.100.7'), \
         ('203.0.113.127'), ('203.0.113.128'), ('2001:db8::9'), ('::ffff:198.51.100.1'), \
         ('Internal')) t(a) ORDER BY a",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "asn,org\n\
         64500,\"Example Net, Inc.\"\n\
         64502,Six Networks\n\
         64501,\"Documentation \"\"Two\"\"\"\n\
         NULL,NULL\n\
         64500,\"Example Net, Inc.\"\n\
         NULL,NULL\n",
        "{}",
        stderr(&o)
    );
    // The environment twin takes a list of paths.
    let o = common::trail()
        .env("TRAIL_ASN_DB", format!("{}:{}", v4.display(), v6.display()))
        .args([
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT ip_asn('2001:db8::1') AS a",
        ])
        .arg("--store")
        .arg(fixture_store())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "a\n64502\n", "{}", stderr(&o));
}

#[test]
fn without_a_database_null_and_one_notice() {
    let o = sql_csv(
        fixture_store(),
        &[],
        "SELECT ip_asn(sourceIpAddress) AS a, ip_country(sourceIpAddress) AS c \
         FROM events LIMIT 3; SELECT ip_org('198.51.100.1') AS o",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "a,c\nNULL,NULL\nNULL,NULL\nNULL,NULL\no\nNULL\n"
    );
    let err = stderr(&o);
    assert_eq!(err.matches("--asn-db").count(), 1, "one notice: {err}");
    assert_eq!(err.matches("--geo-db").count(), 1, "one notice: {err}");
}

#[test]
fn missing_and_broken_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(&bad_csv, "1.0.0.0,1.0.0.255,13335,Cloudflare\nnot,a,row\n").unwrap();
    let mut cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--asn-db".into(), "/no/such/asn.mmdb".into()],
            "/no/such/asn.mmdb: cannot read the IP database".into(),
        ),
        (
            vec!["--asn-db".into(), bad_csv.display().to_string()],
            "bad.csv: not a usable ASN database (line 2".into(),
        ),
    ];
    if let Some(d) = shared_data() {
        let m = d.join("geoip/maxmind-test-data");
        for (flag, file, says) in [
            (
                "--geo-db",
                "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
                "not a usable country database",
            ),
            (
                "--geo-db",
                "GeoIP2-City-Test-Broken-Double-Format.mmdb",
                "not a usable country database",
            ),
            ("--asn-db", "GeoLite2-City-Test.mmdb", "without ASN records"),
            (
                "--geo-db",
                "../../asn/asn-ipv4.csv.gz",
                "not a MaxMind DB file",
            ),
        ] {
            cases.push((
                vec![flag.into(), m.join(file).display().to_string()],
                says.into(),
            ));
        }
    }
    for (flags, says) in cases {
        let mut args = vec!["sql", "-c", "SELECT 1"];
        args.extend(flags.iter().map(String::as_str));
        let o = run_on(fixture_store(), &args);
        assert_eq!(o.status.code(), Some(1), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&says), "{flags:?}: {}", stderr(&o));
    }
}

/// The real IP-to-ASN table resolves the source addresses of real CloudTrail events.
#[test]
fn the_real_asn_table_on_public_cloudtrail_events() {
    let Some(d) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ingest(&store, &[&d.join("public/invictus-aws-dataset/CloudTrail")]);
    let (v4, v6) = (d.join("asn/asn-ipv4.csv.gz"), d.join("asn/asn-ipv6.csv.gz"));
    let o = sql_csv(
        &store,
        &[
            "--asn-db",
            v4.to_str().unwrap(),
            "--asn-db",
            v6.to_str().unwrap(),
        ],
        "SELECT sourceIpAddress AS ip, ip_asn(sourceIpAddress) AS asn, \
         ip_org(sourceIpAddress) AS org, count(*) AS events FROM events \
         WHERE is_ip(sourceIpAddress) AND NOT is_private_ip(sourceIpAddress) \
         GROUP BY 1, 2, 3 ORDER BY events DESC, ip",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert!(!rows.is_empty(), "{text}");
    let resolved = rows.iter().filter(|r| r[1] != "NULL").count();
    eprintln!("public CloudTrail source addresses and their providers:");
    for r in &rows {
        eprintln!(
            "  {:<40} AS{:<8} {}",
            r[0],
            r[1],
            r[2..r.len() - 1].join(",")
        );
    }
    eprintln!(
        "(IP-to-ASN data: routeviews.org, db-ip.com (IP to ASN Lite) and nro.net, \
         CC BY 4.0, merged by ip-location-db; see ../shared/data/asn)"
    );
    assert_eq!(
        resolved,
        rows.len(),
        "every public address has a provider:\n{text}"
    );
}
