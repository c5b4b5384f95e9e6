//! Shared parts of the off-host backup tests (`s3_backup.rs`, `s3_restore.rs`): a `Site` (a sandbox
//! home with a database and an age identity, and an s3s-fs server whose bucket `gm-backups` is the
//! configured destination `offsite`, `s3://gm-backups/acme`), the checks every test repeats (the
//! secret in no output, the ledger or any argv; `error:`/`hint:` lines and JSON errors; the
//! `copies` report) and the database filler that makes an upload last long enough to interrupt.
//! It runs nothing by itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{gm_bin, home_with_schema, identity, wait_until, Gm, TempDir};
use crate::s3_server::S3Server;

pub const BUCKET: &str = "gm-backups";

pub const URL: &str = "s3://gm-backups/acme";

/// Random (incompressible) data added to the database of the interrupted-upload test, so its
/// upload takes long enough to be killed midway in a debug build.
pub const FILLER_MIB: u32 = 48;

/// A sandbox home with a database, an age identity, and a running S3 server with the bucket
/// `gm-backups`, configured in gm.toml as the destination `offsite` (`s3://gm-backups/acme`).
pub struct Site {
    pub dir: TempDir,
    pub home: PathBuf,
    pub recipient: String,
    pub key: PathBuf,
    pub s3: S3Server,
}

impl Site {
    pub fn new(label: &str) -> Site {
        let site = Site::unconfigured(label);
        site.add_destination("offsite", URL, &site.credentials_file("s3-offsite.env"), "path_style = true\n");
        site
    }

    /// A site whose gm.toml names no destination.
    pub fn unconfigured(label: &str) -> Site {
        let dir = TempDir::new(label);
        let home = home_with_schema(&dir);
        let (recipient, key) = identity(&dir);
        let s3 = S3Server::start(&[BUCKET]);
        Site { dir, home, recipient, key, s3 }
    }

    pub fn h(&self) -> &str {
        self.home.to_str().unwrap()
    }

    /// `home/NAME` holding the server's keys, mode 0600; returns the gm.toml line naming it.
    pub fn credentials_file(&self, name: &str) -> String {
        let text = self.credentials_text(&self.s3.secret);
        write_private(&self.home.join(name), &text);
        format!("credentials_file = \"{name}\"\n")
    }

    pub fn credentials_text(&self, secret: &str) -> String {
        format!("AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={secret}\n", self.s3.access_key)
    }

    /// Appends a `[[backup.destinations]]` entry on this site's server (endpoint, region) to gm.toml;
    /// `extra` is more TOML of the entry (keys first, then sub-tables).
    pub fn add_destination(&self, name: &str, url: &str, credentials: &str, extra: &str) {
        self.add_destination_at(name, url, &self.s3.endpoint, credentials, extra);
    }

    pub fn add_destination_at(&self, name: &str, url: &str, endpoint: &str, credentials: &str, extra: &str) {
        self.append_toml(&format!(
            "\n[[backup.destinations]]\nname = \"{name}\"\nurl = \"{url}\"\n\
             endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n{credentials}{extra}"
        ));
    }

    pub fn append_toml(&self, text: &str) {
        let path = self.home.join("gm.toml");
        let mut toml = std::fs::read_to_string(&path).unwrap();
        toml.push_str(text);
        std::fs::write(path, toml).unwrap();
    }

    /// `gm managed backup --home H --recipient R EXTRA…`.
    pub fn backup(&self, extra: &[&str]) -> Gm {
        Gm::new(&[&["managed", "backup", "--home", self.h(), "--recipient", &self.recipient], extra].concat())
    }

    /// `gm managed verify TARGET --identity K --home H EXTRA…`.
    pub fn verify(&self, target: &str, extra: &[&str]) -> Gm {
        let k = self.key.to_str().unwrap();
        Gm::new(&[&["managed", "verify", target, "--identity", k, "--home", self.h()], extra].concat())
    }

    /// The AWS environment variables naming this site's server and keys.
    pub fn aws_env(&self, gm: Gm) -> Gm {
        gm.env("AWS_ACCESS_KEY_ID", &self.s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.s3.secret)
            .env("AWS_ENDPOINT_URL", &self.s3.endpoint)
            .env("AWS_REGION", "us-east-1")
    }

    /// The objects under `gm-backups/PREFIX/` (keys relative to it).
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        self.s3.objects(BUCKET, prefix)
    }

    /// Fails when the server's secret shows in any of `outputs`.
    pub fn assert_no_secret(&self, outputs: &[&str]) {
        for text in outputs {
            assert!(!text.contains(&self.s3.secret), "the S3 secret leaked into an output:\n{text}");
        }
    }

    /// Fails when the secret is in the ops ledger's file (any row, any column).
    pub fn assert_no_secret_in_ledger(&self) {
        let bytes = std::fs::read(self.home.join("gm-ops.db")).unwrap();
        let secret = self.s3.secret.as_bytes();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the S3 secret is in gm-ops.db");
    }
}

/// Watches every process's argv (`/proc/*/cmdline`) for the secret while a test runs, so a
/// child `gm` (drills start `gm serve`) given the secret on its command line is caught. The S3
/// server itself, which is handed the secret by the test, is left out.
pub struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl ArgvWatch {
    pub fn start(s3: &S3Server) -> ArgvWatch {
        let (secret, server) = (s3.secret.clone(), s3.pid().to_string());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut scans, mut hits) = (0, Vec::new());
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
                    let pid = entry.file_name().to_string_lossy().to_string();
                    if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == server {
                        continue;
                    }
                    let Ok(argv) = std::fs::read(entry.path().join("cmdline")) else { continue };
                    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
                    if argv.contains(&secret) && !hits.contains(&argv) {
                        hits.push(argv);
                    }
                }
                scans += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (scans, hits)
        });
        ArgvWatch { stop, thread }
    }

    /// Stops watching; fails naming every command line that held the secret.
    pub fn assert_clean(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (scans, hits) = self.thread.join().unwrap();
        assert!(scans > 0, "the argv watch never ran");
        assert!(hits.is_empty(), "the S3 secret was on a command line: {hits:?}");
    }
}

pub fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// The `copies` entry whose `destination` is `name`.
pub fn copy<'a>(report: &'a Value, name: &str) -> &'a Value {
    let copies = report["copies"].as_array().unwrap_or_else(|| panic!("no copies array: {report}"));
    copies.iter().find(|c| c["destination"] == name).unwrap_or_else(|| panic!("no copy to {name}: {report}"))
}

pub fn file_name(path: &str) -> String {
    Path::new(path).file_name().unwrap().to_str().unwrap().to_string()
}

/// Names of the files in `folder`, sorted (none when it does not exist). Hidden names (gm's
/// folder lock `.gm-backup.lock`) are left out.
pub fn entries(folder: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(folder)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.retain(|n| !n.starts_with('.'));
    v.sort();
    v
}

/// The `error: …` and `hint: …` lines of a failed run's stderr (text mode).
pub fn text_error(stderr: &str) -> (String, String) {
    let line = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{stderr}"))
            .to_string()
    };
    (line("error: "), line("hint: "))
}

/// The `error` and `hint` of the JSON error object a failed `--json` run writes to stderr.
pub fn json_error(stderr: &str) -> (String, String) {
    let line = stderr.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON error:\n{stderr}"));
    let v = json(line);
    let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {line}")).to_string();
    (field("error"), field("hint"))
}

pub fn archives(names: &[String]) -> Vec<String> {
    names.iter().filter(|n| n.ends_with(".tar.gz.age")).cloned().collect()
}

/// Waits until the clock is in the next second (backup names carry seconds).
pub fn next_second() {
    let now = chrono::Utc::now().timestamp();
    assert!(wait_until(Duration::from_secs(3), || chrono::Utc::now().timestamp() > now));
}

pub fn invites(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT COUNT(*) FROM invite_tokens", [], |r| r.get(0)).unwrap()
}

pub fn add_invite(db: &Path, id: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(
            "INSERT INTO invite_tokens (token_id, assigned_roles_json, max_validity_hours, created_at, expires_at)
             VALUES (?1, '[]', 24, '2026-01-01T00:00:00+00:00', '2099-01-01T00:00:00+00:00')",
            [id],
        )
        .unwrap();
}

/// One row of the ops ledger (`gm-ops.db`, table `gm_ops_ledger`).
#[derive(Debug)]
pub struct LedgerRow {
    pub kind: String,
    pub outcome: String,
    pub sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub details_json: String,
}

/// The ops ledger rows whose artifact is `artifact`.
pub fn ledger_rows(home: &Path, artifact: &str) -> Vec<LedgerRow> {
    let c = rusqlite::Connection::open(home.join("gm-ops.db")).unwrap();
    let mut stmt = c
        .prepare("SELECT kind, outcome, sha256, size_bytes, details_json FROM gm_ops_ledger WHERE artifact = ?1")
        .unwrap();
    stmt.query_map([artifact], |r| {
        Ok(LedgerRow {
            kind: r.get(0)?,
            outcome: r.get(1)?,
            sha256: r.get(2)?,
            size_bytes: r.get(3)?,
            details_json: r.get(4)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Adds `mib` MiB of random (incompressible) blobs to the database, in a table of its own.
pub fn add_filler(db: &Path, mib: u32) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE filler (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {mib})
             INSERT INTO filler SELECT randomblob(1048576) FROM n;"
        ))
        .unwrap();
}

/// Starts `gm managed backup --home H --recipient R EXTRA…` (stderr to `log`) and returns it once
/// a multipart part of its upload has reached the server, still running.
pub fn spawn_once_uploading(site: &Site, extra: &[&str], log: &Path) -> std::process::Child {
    let mut child = Command::new(gm_bin())
        .args(["managed", "backup", "--home", site.h(), "--recipient", &site.recipient])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let mut exited = None;
    let uploading = wait_until(Duration::from_secs(300), || {
        exited = child.try_wait().unwrap();
        exited.is_some() || site.s3.upload_files().iter().any(|n| n.starts_with(".upload_id-"))
    });
    assert!(
        uploading && exited.is_none(),
        "the backup ended ({exited:?}) before a multipart part reached the server; raise FILLER_MIB\n\
         gm:\n{}\ns3s-fs:\n{}",
        std::fs::read_to_string(log).unwrap_or_default(),
        site.s3.log()
    );
    child
}

/// Every name in `folder`, hidden ones included.
pub fn entries_all(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}
