//! Real servers on localhost ports for the tests that talk to one: moto's S3-compatible
//! server, and the processes a test starts and must stop.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A moto S3 server on a localhost port.
pub struct S3 {
    _proc: Proc,
    pub port: u16,
}

impl S3 {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub fn moto_available() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server, flask, boto3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Start moto's server; with `auth`, it checks credentials (none are known: every key is
/// refused).
pub fn s3_server(auth: bool) -> Option<S3> {
    if !require(
        "moto's S3 server",
        moto_available(),
        "pip install 'moto[server]'",
    ) {
        return None;
    }
    let port = free_port();
    let mut c = Command::new("python3");
    c.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if auth {
        c.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    }
    let proc = Proc(c.spawn().expect("moto starts"));
    wait_for_port(port);
    Some(S3 { _proc: proc, port })
}

pub fn put(s3: &S3, bucket: &str, prefix: &str, dir: &Path) {
    let o = Command::new("python3")
        .arg(support("s3_put.py"))
        .args([&s3.endpoint(), bucket, prefix])
        .arg(dir)
        .output()
        .expect("s3_put runs");
    assert!(o.status.success(), "upload failed: {}", stderr(&o));
}

pub fn put_bytes(s3: &S3, bucket: &str, key: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, bytes).unwrap();
    put(s3, bucket, "", dir.path());
}

/// Every key in `bucket`.
pub fn keys(s3: &S3, bucket: &str) -> Vec<String> {
    let script = "import sys, boto3\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', \
        aws_secret_access_key='test', region_name='us-east-1')\n\
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2]):\n\
        \x20   for o in page.get('Contents', []): print(o['Key'])\n";
    let o = Command::new("python3")
        .args(["-c", script, &s3.endpoint(), bucket])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "listing failed: {}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

/// `trail` with test credentials and nothing else from the caller's AWS settings.
pub fn trail_s3(home: &Path) -> Command {
    let mut c = trail();
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k.starts_with("ALIBABA_CLOUD_") || k.starts_with("OSS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("HOME", home)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    c
}

/// A store in a bucket of the server at `endpoint`.
pub struct BucketStore {
    pub endpoint: String,
    pub url: String,
    pub home: PathBuf,
}

impl BucketStore {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = trail_s3(&self.home);
        c.env("TRAIL_ENDPOINT", &self.endpoint)
            .args(["--store", &self.url])
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("trail runs")
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "trail {args:?} on {} failed ({:?}):\n{}\n{}",
            self.url,
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        o
    }
}
