#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The malformed-input corpus: every case is ingested into a fresh store and must end with the
//! stated number of good and quarantined records, the stated reason, and no panic.

mod common;

use common::*;
use trail_ingest::IngestOptions;

struct Case {
    name: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    ingested: u64,
    quarantined: u64,
    /// A phrase every error message must contain: `Some` exactly when records are quarantined.
    reason: Option<&'static str>,
}

fn case(
    name: &'static str,
    file: &'static str,
    bytes: impl Into<Vec<u8>>,
    ingested: u64,
    quarantined: u64,
    reason: &'static str,
) -> Case {
    assert!(
        !reason.is_empty() && quarantined > 0,
        "{name}: a case that quarantines names its reason; one that does not is `clean`"
    );
    Case {
        name,
        file,
        bytes: bytes.into(),
        ingested,
        quarantined,
        reason: Some(reason),
    }
}

/// A case where every record is good: nothing is quarantined, no error is reported.
fn clean(name: &'static str, file: &'static str, bytes: impl Into<Vec<u8>>, ingested: u64) -> Case {
    Case {
        name,
        file,
        bytes: bytes.into(),
        ingested,
        quarantined: 0,
        reason: None,
    }
}

fn ev(fields: &str) -> String {
    format!(
        r#"{{"eventId":"x1","eventTime":"2020-12-17T06:55:12Z","acsRegion":"cn-hangzhou",{fields}}}"#
    )
}

fn cases() -> Vec<Case> {
    let g1 = good("g1");
    let g2 = good("g2");
    let deep = format!(
        r#"{{"eventId":"d","eventTime":"2020-12-17T06:55:12Z","requestParameters":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deeper = format!(
        r#"{{"eventId":"d","eventTime":"2020-12-17T06:55:12Z","requestParameters":{}{}}}"#,
        "[".repeat(500_000),
        "]".repeat(500_000)
    );
    let hundred: String = (0..100).map(|i| good(&format!("t{i}")) + "\n").collect();
    let mut invalid_utf8 = format!("{g1}\n").into_bytes();
    invalid_utf8.extend_from_slice(
        b"{\"eventId\":\"bad\xff\xfe\",\"eventTime\":\"2020-12-17T06:55:12Z\"}\n",
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(format!("[{g1}]").as_bytes());
    let mut two_members = gz(format!("{g1}\n").as_bytes());
    two_members.extend(gz(format!("{g2}\n").as_bytes()));
    vec![
        case(
            "truncated NDJSON line",
            "a.json",
            format!("{g1}\n{g2}\n{{\"eventId\":\"x\",\"eventTi"),
            2,
            1,
            "EOF",
        ),
        case(
            "truncated Records array",
            "a.json",
            format!("{{\"Records\":[{g1},{g2},{{\"eventId\":"),
            2,
            1,
            "record 2",
        ),
        case(
            "Records array cut after a record",
            "a.json",
            format!("{{\"Records\":[{g1},{g2}"),
            2,
            1,
            "cut off",
        ),
        // How many records survive depends on where the cut falls (checked below).
        case(
            "truncated gzip",
            "a.json.gz",
            {
                let z = gz(hundred.as_bytes());
                z[..z.len() * 2 / 3].to_vec()
            },
            0,
            1,
            "gzip stream damaged",
        ),
        case(
            "invalid UTF-8 inside a string",
            "a.json",
            invalid_utf8,
            1,
            1,
            "invalid UTF-8",
        ),
        clean("byte-order mark", "a.json", bom, 1),
        case("empty file", "a.json", "", 0, 1, "empty"),
        case("whitespace only", "a.json", " \n\t\n", 0, 1, "whitespace"),
        case(
            "Records is an object",
            "a.json",
            r#"{"Records":{"a":1}}"#,
            0,
            1,
            "not an array",
        ),
        case(
            "Records is a string",
            "a.json",
            r#"{"Records":"x"}"#,
            0,
            1,
            "a string, not an array",
        ),
        case(
            "missing eventTime",
            "a.json",
            r#"{"eventId":"m","acsRegion":"cn-hangzhou"}"#,
            0,
            1,
            "missing eventTime",
        ),
        case(
            "unparseable eventTime",
            "a.json",
            r#"{"eventId":"m","eventTime":"yesterday"}"#,
            0,
            1,
            "is not a time: use RFC 3339",
        ),
        case(
            "impossible date without a zone",
            "a.json",
            r#"{"eventId":"m","eventTime":"2024-13-45 25:61:00"}"#,
            0,
            1,
            "is not a time",
        ),
        case(
            "day-first date",
            "a.json",
            r#"{"eventId":"m","eventTime":"25/11/2024 17:51:21"}"#,
            0,
            1,
            "is not a time",
        ),
        // Exports from SIEMs and log services: UTC without a zone, or epoch milliseconds.
        clean(
            "eventTime as a SIEM export writes it (nanoseconds, no zone)",
            "a.json",
            r#"{"eventId":"x1","eventTime":"2024-11-25 17:51:21.000000000","acsRegion":"cn-hangzhou"}"#,
            1,
        ),
        clean(
            "eventTime without zone or fraction",
            "a.json",
            r#"{"eventId":"x2","eventTime":"2024-11-25 17:51:21","acsRegion":"cn-hangzhou"}"#,
            1,
        ),
        clean(
            "eventTime in epoch milliseconds",
            "a.json",
            r#"{"eventId":"x3","eventTime":1732557081000,"acsRegion":"cn-hangzhou"}"#,
            1,
        ),
        case(
            "eventTime as a number",
            "a.json",
            r#"{"eventId":"m","eventTime":1608188112}"#,
            0,
            1,
            "epoch milliseconds",
        ),
        clean(
            "eventTime without zone",
            "a.json",
            r#"{"eventId":"m","eventTime":"2020-12-17T06:55:12"}"#,
            1,
        ),
        case(
            "eventTime as an object",
            "a.json",
            r#"{"eventId":"m","eventTime":{"t":1}}"#,
            0,
            1,
            "field `eventTime`",
        ),
        case(
            "number in an array of events",
            "a.json",
            format!("[1,{g1}]"),
            1,
            1,
            "a number, not an event object",
        ),
        case(
            "top-level string",
            "a.json",
            r#""hello""#,
            0,
            1,
            "a string, not an event object",
        ),
        case(
            "top-level null line",
            "a.json",
            format!("{g1}\nnull\n"),
            1,
            1,
            "null, not an event object",
        ),
        case(
            "eventName is an object",
            "a.json",
            ev(r#""eventName":{"x":1}"#),
            0,
            1,
            "field `eventName`",
        ),
        case(
            "userIdentity is a string",
            "a.json",
            ev(r#""userIdentity":"root""#),
            0,
            1,
            "field `userIdentity`",
        ),
        case(
            "isGlobal is not a boolean",
            "a.json",
            ev(r#""isGlobal":"maybe""#),
            0,
            1,
            "field `isGlobal`",
        ),
        clean(
            "deep nesting in requestParameters (valid JSON text, kept)",
            "a.json",
            deep,
            1,
        ),
        case(
            "deep nesting where a struct belongs",
            "a.json",
            ev(&format!(
                r#""userIdentity":{{"sessionContext":{{"attributes":{}{}}}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            )),
            0,
            1,
            "field `userIdentity`",
        ),
        clean(
            "500,000 levels of nesting (no stack overflow)",
            "a.json",
            deeper,
            1,
        ),
        case(
            "duplicate key",
            "a.json",
            ev(r#""eventName":"A","eventName":"B""#),
            0,
            1,
            "duplicate key `eventName`",
        ),
        case(
            "duplicate key in two spellings",
            "a.json",
            ev(r#""awsRegion":"us-east-1""#),
            0,
            1,
            "duplicate key `acsRegion`",
        ),
        case(
            "duplicate key inside userIdentity",
            "a.json",
            ev(r#""userIdentity":{"userName":"a","USERNAME":"b"}"#),
            0,
            1,
            "duplicate key `userName`",
        ),
        clean(
            "lowercase keys",
            "a.json",
            r#"{"eventid":"lc","eventtime":"2020-12-17T06:55:12Z","acsregion":"cn-hangzhou","eventname":"ListUsers","sourceipaddress":"1.2.3.4"}"#,
            1,
        ),
        clean(
            "uppercase keys",
            "a.json",
            r#"{"EVENTID":"uc","EVENTTIME":"2020-12-17T06:55:12Z","AWSREGION":"us-east-1"}"#,
            1,
        ),
        case(
            "region too long",
            "a.json",
            format!(
                r#"{{"eventId":"r","eventTime":"2020-12-17T06:55:12Z","acsRegion":"{}"}}"#,
                "a".repeat(200)
            ),
            0,
            1,
            "acsRegion is 200 bytes",
        ),
        clean(
            "CRLF line endings",
            "a.json",
            format!("{g1}\r\n{g2}\r\n"),
            2,
        ),
        case(
            "trailing garbage after an array",
            "a.json",
            format!("[{g1}] garbage"),
            1,
            1,
            "after the array",
        ),
        case(
            "unterminated array",
            "a.json",
            "[",
            0,
            1,
            "not valid JSON (unexpected end of input)",
        ),
        case(
            "binary garbage",
            "a.bin",
            vec![0u8, 159, 146, 150, 7, 8, 9],
            0,
            1,
            "invalid JSON",
        ),
        case(
            "gzip of garbage",
            "a.json.gz",
            gz(b"this is not json"),
            0,
            1,
            "invalid JSON",
        ),
        clean("multi-member gzip", "a.json.gz", two_members, 2),
        clean(
            "Records objects one per line",
            "a.json",
            format!("{{\"Records\":[{g1}]}}\n{{\"Records\":[{g2}]}}\n"),
            2,
        ),
        case(
            "missing eventTime, Logstash @timestamp",
            "a.json",
            r#"{"eventId":"ls","@timestamp":"2020-09-14T00:44:23.000Z"}"#,
            0,
            1,
            "--event-time-fallback",
        ),
        clean(
            "eventTime with an offset",
            "a.json",
            r#"{"eventId":"tz","eventTime":"2020-12-17T02:00:00+08:00","acsRegion":"cn-hangzhou"}"#,
            1,
        ),
        clean(
            "no eventId",
            "a.json",
            r#"{"eventTime":"2020-12-17T06:55:12Z","eventName":"X"}"#,
            1,
        ),
        clean(
            "escaped control characters",
            "a.json",
            ev(r#""eventName":"\u001b[31mRed\u0000","userAgent":"a\nb""#),
            1,
        ),
        clean(
            "insight event among events",
            "a.json",
            format!(
                r#"[{g1},{{"eventId":"i","eventType":"ActionTrailInsight","eventTime":"2020-12-17T06:55:12Z","insightDetails":{{}}}}]"#
            ),
            1,
        ),
        clean(
            "digest content",
            "a.json",
            r#"{"digestStartTime":"2023-07-10T11:00:00Z","logFiles":[]}"#,
            0,
        ),
        clean(
            "JSON array inside an NDJSON line",
            "a.json",
            format!("[{g1}]\n[{g2}]\n"),
            2,
        ),
        case(
            "good record followed by a NUL byte line",
            "a.json",
            format!("{g1}\n\0\n"),
            1,
            1,
            "invalid JSON",
        ),
    ]
}

#[test]
fn malformed_corpus() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = vec![];
    for c in cases {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let file = input.join(c.file);
        std::fs::write(&file, &c.bytes).unwrap();
        let store = dir.path().join("store");
        let s = match trail_ingest::ingest(
            &store,
            std::slice::from_ref(&file),
            &opts(),
            &trail_ingest::Progress::default(),
            |_| {},
        ) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: ingest failed: {e}", c.name));
                continue;
            }
        };
        if c.name == "truncated gzip" {
            // How much survives depends on where the cut falls; what matters is that the good
            // prefix is kept and the damage is reported.
            if !(s.ingested > 0 && s.ingested < 100 && s.quarantined >= 1) {
                failures.push(format!(
                    "{}: {} ingested, {} quarantined",
                    c.name, s.ingested, s.quarantined
                ));
            }
            if !s
                .errors
                .iter()
                .any(|e| e.error.contains(c.reason.unwrap_or("?")))
            {
                failures.push(format!("{}: no gzip error in {:?}", c.name, s.errors));
            }
            continue;
        }
        if (s.ingested, s.quarantined) != (c.ingested, c.quarantined) {
            failures.push(format!(
                "{}: expected {} ingested / {} quarantined, got {} / {}: {:?}",
                c.name, c.ingested, c.quarantined, s.ingested, s.quarantined, s.errors
            ));
            continue;
        }
        if c.reason.is_none() && !s.errors.is_empty() {
            failures.push(format!("{}: unexpected errors {:?}", c.name, s.errors));
        }
        for e in &s.errors {
            let reason = c.reason.unwrap_or("(no error expected)");
            if !e.error.contains(reason) {
                failures.push(format!("{}: error `{}` lacks `{reason}`", c.name, e.error));
            }
            if e.file != file.display().to_string() {
                failures.push(format!("{}: error names {} not the file", c.name, e.file));
            }
        }
        if s.quarantined > 0 {
            let q = s.quarantine_file.clone().expect("a quarantine file");
            let text = std::fs::read_to_string(&q).unwrap();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len() as u64, s.quarantined, "{}", c.name);
            for l in &lines {
                assert!(
                    l["error"].is_string() && l["file"].is_string() && l["line"].is_u64(),
                    "{}: {l}",
                    c.name
                );
                assert!(
                    l["record"].is_string() || l["record_base64"].is_string(),
                    "{}: {l}",
                    c.name
                );
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn huge_event_is_kept_whole_or_quarantined_by_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(10 << 20);
    let rec = format!(
        r#"{{"eventId":"big","eventTime":"2020-12-17T06:55:12Z","requestParameters":{{"blob":"{big}"}}}}"#
    );
    let file = dir.path().join("big.json");
    std::fs::write(&file, &rec).unwrap();
    let s = ingest(&dir.path().join("s1"), std::slice::from_ref(&file), &opts());
    assert_eq!((s.ingested, s.quarantined), (1, 0));
    let raw = strings(&read_all(&dir.path().join("s1")), "raw");
    assert_eq!(raw[0].as_deref().map(str::len), Some(rec.len()));

    let limited = IngestOptions {
        max_record_bytes: 1 << 20,
        ..opts()
    };
    let s = ingest(&dir.path().join("s2"), &[file], &limited);
    assert_eq!((s.ingested, s.quarantined), (0, 1));
    assert!(
        s.errors[0].error.contains("max-record-bytes"),
        "{:?}",
        s.errors
    );
}

#[test]
fn logstash_records_with_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ls.json");
    std::fs::write(
        &file,
        r#"{"eventID":"ls","@timestamp":"2020-09-14T00:44:23.000Z","awsRegion":"us-east-1"}"#,
    )
    .unwrap();
    let o = IngestOptions {
        normalize: trail_ingest::NormalizeOptions {
            at_timestamp_fallback: true,
        },
        ..opts()
    };
    let s = ingest(&dir.path().join("s"), &[file], &o);
    assert_eq!((s.ingested, s.quarantined), (1, 0));
}

#[test]
fn hostile_regions_stay_inside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let regions = [
        "../../x",
        "a/b",
        "%2e%2e",
        "..",
        "C:\\win",
        "\u{1b}[2J",
        "ümlaut",
    ];
    let body: String = regions
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}\n", serde_json::json!({"eventId": format!("h{i}"), "eventTime": "2020-12-17T06:55:12Z", "acsRegion": r})))
        .collect();
    let file = dir.path().join("hostile.json");
    std::fs::write(&file, body).unwrap();
    let store = dir.path().join("store");
    let s = ingest(&store, &[file], &opts());
    assert_eq!(s.ingested, regions.len() as u64);
    // Every file sits exactly three levels below events/, and nothing was written outside.
    let events = store.join("events");
    let mut found = 0;
    for entry in walk(&store) {
        let rel = entry.strip_prefix(&store).unwrap();
        if entry.extension().is_some_and(|e| e == "parquet") {
            assert!(entry.starts_with(&events), "{}", entry.display());
            assert_eq!(rel.components().count(), 4, "{}", rel.display());
            found += 1;
        }
    }
    assert_eq!(found, regions.len());
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside.len(), 2, "{outside:?}");
    // And the stored region values are the original strings.
    let mut got: Vec<String> = strings(&read_all(&store), "acsRegion")
        .into_iter()
        .flatten()
        .collect();
    got.sort();
    let mut want: Vec<String> = regions.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Export time forms are read as UTC, and the record keeps its original text.
#[test]
fn export_time_forms_are_utc_and_raw_keeps_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson");
    let lines = [
        r#"{"eventId":"a","eventTime":"2024-11-25 17:51:21.000000000","acsRegion":"cn-hangzhou"}"#,
        r#"{"eventId":"b","eventTime":"2024-11-25 17:51:21","acsRegion":"cn-hangzhou"}"#,
        r#"{"eventId":"c","eventTime":1732557081000,"acsRegion":"cn-hangzhou"}"#,
        r#"{"eventId":"d","eventTime":"2024-11-25T17:51:21Z","acsRegion":"cn-hangzhou"}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let store = dir.path().join("store");
    let s = ingest(&store, &[file], &opts());
    assert_eq!((s.ingested, s.quarantined), (4, 0), "{:?}", s.errors);
    let batches = read_all(&store);
    let raw = strings(&batches, "raw");
    let mut times = Vec::new();
    for b in &batches {
        let t = b
            .column_by_name("eventTime")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .unwrap();
        times.extend(t.values().iter().copied());
    }
    assert_eq!(times, vec![1_732_557_081_000_000; 4]);
    for r in &raw {
        assert!(lines.contains(&r.as_deref().unwrap()), "{r:?}");
    }
}

/// Large `{"Records": [...]}` and array documents (plain, and gzip above the size read whole)
/// are cut between elements as they stream in and decoded side by side: every good record is
/// kept, and a bad one is reported with its true line and index, wherever the cuts fall.
#[test]
fn large_arrays_are_split_as_they_stream_in() {
    use std::io::Write;
    const N: usize = 60_000;
    const BAD: usize = 41_234;
    let record = |i: usize| {
        format!(
            r#"{{"eventId":"e-{i:06}","eventTime":"2020-12-17T06:{:02}:{:02}Z","acsRegion":"cn-hangzhou","eventName":"Op{}","requestParameters":{{"note":"{:0>200}","q":"a,]}}[\"b"}}}}"#,
            (i / 60) % 60,
            i % 60,
            i % 7,
            i
        )
    };
    // One element per line after the opening line: element i is on line i + 2.
    let body = |bad_at: Option<usize>| -> String {
        (0..N)
            .map(|i| {
                if Some(i) == bad_at {
                    "42".to_owned()
                } else {
                    record(i)
                }
            })
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let dir = tempfile::tempdir().unwrap();
    let records = format!("{{\"Records\": [\n{}\n], \"Other\": 1}}\n", body(Some(BAD)));
    assert!(
        records.len() > 16 << 20,
        "several chunks: {}",
        records.len()
    );
    let array = format!("[\n{}\n]\n", body(None));
    let gz = dir.path().join("array.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(array.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert!(std::fs::metadata(&gz).unwrap().len() > 1 << 20);
    let plain = dir.path().join("records.json");
    std::fs::write(&plain, &records).unwrap();

    let s = ingest(
        &dir.path().join("s1"),
        std::slice::from_ref(&plain),
        &opts(),
    );
    assert_eq!(
        (s.ingested, s.quarantined),
        (N as u64 - 1, 1),
        "{:?}",
        s.errors
    );
    let e = &s.errors[0];
    assert_eq!((e.line, e.index), (BAD as u64 + 2, Some(BAD as u64)), "{e}");
    assert!(e.error.contains("not an event object"), "{e}");
    let ids = strings(&read_all(&dir.path().join("s1")), "eventId");
    assert_eq!(ids.len(), N - 1);

    let s = ingest(&dir.path().join("s2"), std::slice::from_ref(&gz), &opts());
    assert_eq!((s.ingested, s.quarantined), (N as u64, 0), "{:?}", s.errors);

    // Cut off inside an element: the records before it are kept, the damage is reported where
    // it is. Data after a top-level array is reported too.
    let cut = dir.path().join("cut.json");
    let text = array.trim_end().trim_end_matches(']');
    std::fs::write(&cut, &text[..text.len() - 30]).unwrap();
    let s = ingest(&dir.path().join("s3"), std::slice::from_ref(&cut), &opts());
    assert_eq!(
        (s.ingested, s.quarantined),
        (N as u64 - 1, 1),
        "{:?}",
        s.errors
    );
    assert_eq!(s.errors[0].index, Some(N as u64 - 1), "{}", s.errors[0]);
    assert_eq!(s.errors[0].line, N as u64 + 1, "{}", s.errors[0]);
    let trailing = dir.path().join("trailing.json");
    std::fs::write(&trailing, format!("{array}garbage")).unwrap();
    let s = ingest(
        &dir.path().join("s4"),
        std::slice::from_ref(&trailing),
        &opts(),
    );
    assert_eq!(s.ingested, N as u64);
    assert!(
        s.errors.iter().any(|e| e.error.contains("after the array")),
        "{:?}",
        s.errors
    );
}
