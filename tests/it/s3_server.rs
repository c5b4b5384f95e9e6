//! A real S3 server for the off-host backup tests: s3s-fs (crates.io), which serves a folder over
//! the S3 protocol and checks SigV4 signatures. `S3Server::start` runs it on 127.0.0.1, port 0,
//! with a fresh access key and secret, and kills and reaps it on drop. A bucket is a folder of the
//! root, an object the file `ROOT/bucket/key`; multipart uploads in progress are the files
//! `ROOT/.upload-<uuid>.json` and `ROOT/.upload_id-<uuid>.part-N`. It implements neither Object Lock
//! (the headers are ignored) nor ListMultipartUploads, and it answers NoSuchBucket only to bucket
//! and read requests: a PutObject into a bucket that does not exist creates its folder, where S3
//! refuses. `S3Server::missing_bucket` plants a bucket that is missing for writes too. Tests read the
//! folder to see what really reached the bucket.
//!
//! The binary: `$GM_TEST_S3S_FS`, else `target/test-tools/bin/s3s-fs` (scripts/install-test-deps.sh
//! builds it there). A missing binary fails the test, never skips it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{wait_until, TempDir};

/// A running s3s-fs, killed and reaped on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub access_key: String,
    pub secret: String,
    /// The served folder: `root/<bucket>/<key>` is an object.
    pub root: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl S3Server {
    /// Starts s3s-fs over a fresh folder holding the given buckets (each 3+ characters).
    pub fn start(buckets: &[&str]) -> S3Server {
        let dir = TempDir::new("s3s-fs");
        let root = dir.join("root");
        for bucket in buckets {
            assert!(bucket.len() >= 3, "s3s-fs bucket names need 3+ characters: {bucket}");
            std::fs::create_dir_all(root.join(bucket)).unwrap();
        }
        let n = dir.path().file_name().unwrap().to_string_lossy().to_string();
        let access_key = format!("GMTESTKEY{}", n.replace(['-', '_'], "").to_uppercase());
        // A secret no other test output could contain by chance, so a grep for it means a leak.
        let secret = format!("gm-test-secret-{}", random_hex(16));
        let (log, errors) = (dir.join("s3s-fs.out"), dir.join("s3s-fs.err"));
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", "0", "--access-key", &access_key, "--secret-key", &secret])
            .arg(&root)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&errors).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        let mut server =
            S3Server { child, endpoint: String::new(), access_key, secret, root: root.clone(), log, _dir: dir };
        let mut endpoint = None;
        let started = wait_until(Duration::from_secs(20), || {
            endpoint = endpoint_in(&std::fs::read_to_string(&server.log).unwrap_or_default());
            endpoint.is_some() || server.child.try_wait().unwrap().is_some()
        });
        let Some(endpoint) = endpoint.filter(|_| started) else {
            panic!(
                "s3s-fs did not say where it listens (waited 20 s)\nstdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default(),
                std::fs::read_to_string(&errors).unwrap_or_default()
            );
        };
        server.endpoint = endpoint;
        server
    }

    /// Makes `bucket` missing as S3 has it: NoSuchBucket to HeadBucket and ListObjects (as for any
    /// bucket without a folder), and, unlike a bare s3s-fs, writes refused too (a 500 instead of
    /// NoSuchBucket): its folder is a dangling symlink, which s3s-fs cannot create folders under.
    pub fn missing_bucket(&self, bucket: &str) {
        std::os::unix::fs::symlink(self.root.join(format!(".missing-{bucket}")), self.root.join(bucket)).unwrap();
    }

    /// The file holding `bucket/key` (whether or not it exists).
    pub fn object(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Every object under `bucket/prefix/` (recursively), as keys relative to the prefix, sorted.
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let base = self.root.join(bucket).join(prefix);
        let mut out = Vec::new();
        collect_files(&base, &base, &mut out);
        out.sort();
        out
    }

    /// The names of the root's multipart-upload files (`.upload-<uuid>.json`,
    /// `.upload_id-<uuid>.part-N`), sorted.
    pub fn upload_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".upload-") || n.starts_with(".upload_id-"))
            .collect();
        names.sort();
        names
    }

    /// Every file name in the root that names multipart upload `uuid` (its record, its parts and
    /// its pending metadata).
    pub fn files_of_upload(&self, uuid: &str) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(uuid))
            .collect()
    }

    /// Kills the server (as a crash would), keeping its folder for inspection.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id (its own argv holds the secret: `--secret-key`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far (its requests, at info level).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The multipart upload ids named by `.upload-<uuid>.json` files among `names`.
pub fn upload_ids(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| n.strip_prefix(".upload-").and_then(|r| r.strip_suffix(".json")))
        .map(str::to_string)
        .collect()
}

fn binary() -> PathBuf {
    let path = std::env::var_os("GM_TEST_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/bin/s3s-fs"));
    assert!(
        path.is_file(),
        "s3s-fs is not installed: run scripts/install-test-deps.sh (looked for {}; GM_TEST_S3S_FS overrides)",
        path.display()
    );
    path
}

/// The address in s3s-fs's `server is running at http://127.0.0.1:PORT` line, colours or not.
fn endpoint_in(log: &str) -> Option<String> {
    let plain = strip_ansi(log);
    let at = plain.find("server is running at ")? + "server is running at ".len();
    let rest = &plain[at..];
    let url: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c)).collect();
    let port = url.rsplit(':').next()?;
    (url.starts_with("http://") && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())).then_some(url)
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            collect_files(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().to_string_lossy().to_string());
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn endpoint_is_found_in_plain_and_coloured_logs() {
    let coloured = "  \u{1b}[2m2026-12-05T22:49:53Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[1;32ms3s_fs\u{1b}[0m\
                    \u{1b}[32m: \u{1b}[32mserver is running at \u{1b}[1;32mhttp://127.0.0.1:42987\u{1b}[0m\n";
    assert_eq!(endpoint_in(coloured).as_deref(), Some("http://127.0.0.1:42987"));
    let plain =
        "  2026-12-05T22:49:53Z  INFO s3s_fs: server is running at http://127.0.0.1:8014\n    at src/main.rs:121\n";
    assert_eq!(endpoint_in(plain).as_deref(), Some("http://127.0.0.1:8014"));
    assert_eq!(endpoint_in("INFO s3s_fs: authentication is enabled\n"), None);
}

/// The server really checks SigV4: a request signed with the secret is served, one signed with
/// another secret is refused (403 SignatureDoesNotMatch) and stores nothing. curl signs here, so
/// this holds whatever gm does.
#[test]
fn the_server_serves_signed_requests_and_refuses_wrongly_signed_ones() {
    let s3 = S3Server::start(&["gm-backups"]);
    let dir = TempDir::new("s3s-curl");
    let body = dir.join("body.txt");
    std::fs::write(&body, b"hello bucket").unwrap();
    let curl = |secret: &str, extra: &[&str], url: &str| {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3"])
            .args(["--user", &format!("{}:{secret}", s3.access_key)])
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(extra)
            .arg(format!("{}/{url}", s3.endpoint))
            .output()
            .expect("curl is installed (scripts/install-test-deps.sh)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let put = ["-T", body.to_str().unwrap()];
    assert!(curl(&s3.secret, &put, "gm-backups/acme/a.txt").ends_with("\n200"));
    assert_eq!(std::fs::read(s3.object("gm-backups", "acme/a.txt")).unwrap(), b"hello bucket");
    assert_eq!(curl(&s3.secret, &[], "gm-backups/acme/a.txt"), "hello bucket\n200");
    let refused = curl("not-the-secret", &put, "gm-backups/acme/b.txt");
    assert!(refused.contains("SignatureDoesNotMatch") && refused.ends_with("\n403"), "{refused}");
    assert_eq!(s3.objects("gm-backups", "acme"), vec!["a.txt".to_string()]);
    // A missing bucket: NoSuchBucket to a listing; a write is refused and stores nothing.
    s3.missing_bucket("no-such-bucket");
    let listing = curl(&s3.secret, &[], "no-such-bucket?list-type=2");
    assert!(listing.contains("NoSuchBucket") && listing.ends_with("\n404"), "{listing}");
    assert!(curl(&s3.secret, &put, "no-such-bucket/acme/a.txt").ends_with("\n500"));
    assert!(!s3.root.join("no-such-bucket").exists());
    assert_eq!(s3.objects("no-such-bucket", ""), Vec::<String>::new());
    assert_eq!(s3.upload_files(), Vec::<String>::new());
}
