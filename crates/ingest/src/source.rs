//! Finding and reading inputs: files, directories (recursive), `-` for stdin; plain or gzip
//! (multi-member too). Delivery trees are recognized: CloudTrail digest files and insight
//! folders are skipped with a reason, other stray files are ignored and counted.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{IngestError, Result};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File { path: PathBuf, size: u64 },
    Stdin,
}

impl Input {
    /// How the input is named in messages.
    pub fn display(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stdin => "<stdin>".to_owned(),
        }
    }
}

/// A file found but not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A CloudTrail digest file (integrity hashes, not events).
    Digest,
    /// Insight events delivered by the vendor (`Actiontrail-Insight`, `CloudTrail-Insight`).
    Insight,
    /// Not an event file by its name (found while walking a directory).
    NotEvents,
}

const EVENT_EXTENSIONS: [&str; 5] = [".json", ".jsonl", ".ndjson", ".log", ".gz"];

fn classify(path: &Path) -> Option<SkipReason> {
    let s = path.to_string_lossy();
    let comps: Vec<&str> = s.split(['/', '\\']).collect();
    if comps
        .iter()
        .any(|c| c.eq_ignore_ascii_case("CloudTrail-Digest"))
        || comps
            .last()
            .is_some_and(|n| n.contains("_CloudTrail-Digest_"))
    {
        return Some(SkipReason::Digest);
    }
    if comps.iter().any(|c| {
        c.eq_ignore_ascii_case("Actiontrail-Insight")
            || c.eq_ignore_ascii_case("CloudTrail-Insight")
    }) {
        return Some(SkipReason::Insight);
    }
    None
}

fn is_event_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    let in_tree = path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c.eq_ignore_ascii_case("Actiontrail") || c.eq_ignore_ascii_case("CloudTrail")
    });
    in_tree || EVENT_EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// Expand the command-line paths into inputs, sorted within each directory, plus the files
/// skipped on the way.
pub fn discover(paths: &[PathBuf]) -> Result<(Vec<Input>, Vec<Skipped>)> {
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = fs::metadata(p).map_err(|e| IngestError::Input {
            path: p.clone(),
            reason: format!("{e} (check the path)"),
        })?;
        if meta.is_dir() {
            walk(p, &mut inputs, &mut skipped)?;
        } else if let Some(reason) = classify(p) {
            skipped.push(Skipped {
                path: p.display().to_string(),
                reason,
            });
        } else {
            inputs.push(Input::File {
                path: p.clone(),
                size: meta.len(),
            });
        }
    }
    Ok((inputs, skipped))
}

fn walk(dir: &Path, inputs: &mut Vec<Input>, skipped: &mut Vec<Skipped>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| IngestError::Input {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Symlinks are not followed while walking: they could loop or leave the tree.
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Some(reason) = classify(&path) {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason,
                });
            } else {
                walk(&path, inputs, skipped)?;
            }
        } else if ft.is_file() {
            if let Some(reason) = classify(&path) {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason,
                });
            } else if is_event_name(&path) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                inputs.push(Input::File { path, size });
            } else {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason: SkipReason::NotEvents,
                });
            }
        }
    }
    Ok(())
}

/// Is this the start of a gzip stream?
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Decompress a whole gzip buffer (all members). A damaged or truncated stream yields what
/// could be decompressed plus the error.
pub fn gunzip(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(8).min(1 << 30));
    let mut dec = MultiGzDecoder::new(bytes);
    // On error `read_to_end` keeps what it read before it.
    match dec.read_to_end(&mut out) {
        Ok(_) => (out, None),
        Err(e) => {
            let n = out.len();
            (
                out,
                Some(format!(
                    "gzip stream damaged after {n} decompressed bytes: {e}"
                )),
            )
        }
    }
}

/// Open an input as a byte stream, decompressing gzip when the content is gzip.
pub fn open_stream(input: &Input) -> Result<Box<dyn Read + Send>> {
    let mut raw: Box<dyn Read + Send> = match input {
        Input::File { path, .. } => Box::new(File::open(path).map_err(|e| IngestError::Input {
            path: path.clone(),
            reason: e.to_string(),
        })?),
        Input::Stdin => Box::new(io::stdin()),
    };
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(IngestError::Input {
                    path: PathBuf::from(input.display()),
                    reason: e.to_string(),
                });
            }
        }
    }
    let chained = io::Cursor::new(head[..got].to_vec()).chain(raw);
    if is_gzip(&head[..got]) {
        Ok(Box::new(MultiGzDecoder::new(chained)))
    } else {
        Ok(Box::new(chained))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_trees_are_classified() {
        assert_eq!(
            classify(Path::new(
                "x/AWSLogs/1/CloudTrail-Digest/us-east-1/2023/07/10/a.json.gz"
            )),
            Some(SkipReason::Digest)
        );
        assert_eq!(
            classify(Path::new(
                "x/AliyunLogs/Actiontrail-Insight/cn-hangzhou/2020/12/17/a.gz"
            )),
            Some(SkipReason::Insight)
        );
        assert_eq!(
            classify(Path::new(
                "x/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/a"
            )),
            None
        );
        assert!(is_event_name(Path::new(
            "x/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/a"
        )));
        assert!(!is_event_name(Path::new("x/notes.txt")));
        assert!(!is_event_name(Path::new("x/.hidden.json")));
    }

    #[test]
    fn gunzip_salvages_truncated_streams() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&b"{\"a\":1}\n".repeat(10000)).unwrap();
        let gz = enc.finish().unwrap();
        let (all, err) = gunzip(&gz);
        assert!(err.is_none());
        assert_eq!(all.len(), 80000);
        let (part, err) = gunzip(&gz[..gz.len() / 2]);
        assert!(err.is_some());
        assert!(!part.is_empty() && part.len() < 80000);
        // Two members back to back read as one stream.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        assert_eq!(gunzip(&two).0.len(), 160000);
    }
}
