//! Off-host backups to S3-compatible object storage (issue 17), end to end against a real S3
//! server (s3s-fs, `tests/it/s3_server.rs`, which checks SigV4): `gm managed backup --to NAME` and
//! `--dir s3://…` upload the same signed bytes a local folder gets (`<prefix>/gm-<network>-<UTC>.tar.gz.age`
//! and its `.sig`), report every copy (`copies` in `--json`) and record it in the ops ledger;
//! credentials come from a private file, a systemd credential or the AWS environment and never
//! show in any output; a copy that fails (wrong keys, no bucket, no server, Object Lock not
//! applied) exits 2, keeps the other copies and leaves nothing under the final name; a killed
//! upload leaves no object and the next run aborts it; verify, restore, restore-drill (`--backup`,
//! `--latest`) and prune read the bucket as they read a folder.
//!
//! Every assertion looks at what really happened: the files under the server's root, exit codes,
//! the JSON fields, the ops ledger's rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{home_with_schema, identity, wait_until, Gm, TempDir, GM};
use crate::s3_server::{upload_ids, S3Server};

const BUCKET: &str = "gm-backups";
const URL: &str = "s3://gm-backups/acme";
/// Random (incompressible) data added to the database of the interrupted-upload test, so its
/// upload takes long enough to be killed midway in a debug build.
const FILLER_MIB: u32 = 48;

/// A sandbox home with a database, an age identity, and a running S3 server with the bucket
/// `gm-backups`, configured in gm.toml as the destination `offsite` (`s3://gm-backups/acme`).
struct Site {
    dir: TempDir,
    home: PathBuf,
    recipient: String,
    key: PathBuf,
    s3: S3Server,
}

impl Site {
    fn new(label: &str) -> Site {
        let site = Site::unconfigured(label);
        site.add_destination("offsite", URL, &site.credentials_file("s3-offsite.env"), "path_style = true\n");
        site
    }

    /// A site whose gm.toml names no destination.
    fn unconfigured(label: &str) -> Site {
        let dir = TempDir::new(label);
        let home = home_with_schema(&dir);
        let (recipient, key) = identity(&dir);
        let s3 = S3Server::start(&[BUCKET]);
        Site { dir, home, recipient, key, s3 }
    }

    fn h(&self) -> &str {
        self.home.to_str().unwrap()
    }

    /// `home/NAME` holding the server's keys, mode 0600; returns the gm.toml line naming it.
    fn credentials_file(&self, name: &str) -> String {
        let text = self.credentials_text(&self.s3.secret);
        write_private(&self.home.join(name), &text);
        format!("credentials_file = \"{name}\"\n")
    }

    fn credentials_text(&self, secret: &str) -> String {
        format!("AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={secret}\n", self.s3.access_key)
    }

    /// Appends a `[[backup.destinations]]` entry on this site's server (endpoint, region) to gm.toml;
    /// `extra` is more TOML of the entry (keys first, then sub-tables).
    fn add_destination(&self, name: &str, url: &str, credentials: &str, extra: &str) {
        self.add_destination_at(name, url, &self.s3.endpoint, credentials, extra);
    }

    fn add_destination_at(&self, name: &str, url: &str, endpoint: &str, credentials: &str, extra: &str) {
        self.append_toml(&format!(
            "\n[[backup.destinations]]\nname = \"{name}\"\nurl = \"{url}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n{credentials}{extra}"
        ));
    }

    fn append_toml(&self, text: &str) {
        let path = self.home.join("gm.toml");
        let mut toml = std::fs::read_to_string(&path).unwrap();
        toml.push_str(text);
        std::fs::write(path, toml).unwrap();
    }

    /// `gm managed backup --home H --recipient R EXTRA…`.
    fn backup(&self, extra: &[&str]) -> Gm {
        Gm::new(&[&["managed", "backup", "--home", self.h(), "--recipient", &self.recipient], extra].concat())
    }

    /// `gm managed verify TARGET --identity K --home H EXTRA…`.
    fn verify(&self, target: &str, extra: &[&str]) -> Gm {
        let k = self.key.to_str().unwrap();
        Gm::new(&[&["managed", "verify", target, "--identity", k, "--home", self.h()], extra].concat())
    }

    /// The AWS environment variables naming this site's server and keys.
    fn aws_env(&self, gm: Gm) -> Gm {
        gm.env("AWS_ACCESS_KEY_ID", &self.s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.s3.secret)
            .env("AWS_ENDPOINT_URL", &self.s3.endpoint)
            .env("AWS_REGION", "us-east-1")
    }

    /// The objects under `gm-backups/PREFIX/` (keys relative to it).
    fn objects(&self, prefix: &str) -> Vec<String> {
        self.s3.objects(BUCKET, prefix)
    }

    /// Fails when the server's secret shows in any of `outputs`.
    fn assert_no_secret(&self, outputs: &[&str]) {
        for text in outputs {
            assert!(!text.contains(&self.s3.secret), "the S3 secret leaked into an output:\n{text}");
        }
    }

    /// Fails when the secret is in the ops ledger's file (any row, any column).
    fn assert_no_secret_in_ledger(&self) {
        let bytes = std::fs::read(self.home.join("gm-ops.db")).unwrap();
        let secret = self.s3.secret.as_bytes();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the S3 secret is in gm-ops.db");
    }
}

/// Watches every process's argv (`/proc/*/cmdline`) for the secret while a test runs, so a
/// child `gm` (drills start `gm serve`) given the secret on its command line is caught. The S3
/// server itself, which is handed the secret by the test, is left out.
struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl ArgvWatch {
    fn start(s3: &S3Server) -> ArgvWatch {
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
    fn assert_clean(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (scans, hits) = self.thread.join().unwrap();
        assert!(scans > 0, "the argv watch never ran");
        assert!(hits.is_empty(), "the S3 secret was on a command line: {hits:?}");
    }
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// The `copies` entry whose `destination` is `name`.
fn copy<'a>(report: &'a Value, name: &str) -> &'a Value {
    let copies = report["copies"].as_array().unwrap_or_else(|| panic!("no copies array: {report}"));
    copies.iter().find(|c| c["destination"] == name).unwrap_or_else(|| panic!("no copy to {name}: {report}"))
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().unwrap().to_str().unwrap().to_string()
}

/// Names of the files in `folder`, sorted (none when it does not exist). Hidden names (gm's folder lock `.gm-backup.lock`) are left out.
fn entries(folder: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(folder)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.retain(|n| !n.starts_with('.'));
    v.sort();
    v
}

/// The `error: …` and `hint: …` lines of a failed run's stderr (text mode).
fn text_error(stderr: &str) -> (String, String) {
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
fn json_error(stderr: &str) -> (String, String) {
    let line = stderr.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON error:\n{stderr}"));
    let v = json(line);
    let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {line}")).to_string();
    (field("error"), field("hint"))
}

fn archives(names: &[String]) -> Vec<String> {
    names.iter().filter(|n| n.ends_with(".tar.gz.age")).cloned().collect()
}

/// Waits until the clock is in the next second (backup names carry seconds).
fn next_second() {
    let now = chrono::Utc::now().timestamp();
    assert!(wait_until(Duration::from_secs(3), || chrono::Utc::now().timestamp() > now));
}

fn invites(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT COUNT(*) FROM invite_tokens", [], |r| r.get(0)).unwrap()
}

fn add_invite(db: &Path, id: &str) {
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
struct LedgerRow {
    kind: String,
    outcome: String,
    sha256: Option<String>,
    size_bytes: Option<i64>,
    details_json: String,
}

/// The ops ledger rows whose artifact is `artifact`.
fn ledger_rows(home: &Path, artifact: &str) -> Vec<LedgerRow> {
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

#[test]
fn backup_to_a_folder_and_a_configured_destination_uploads_the_same_signed_bytes() {
    let site = Site::new("s3-both");
    let local = site.dir.join("local");
    // Debug logging on: the secret must not reach the log lines either.
    let (stdout, stderr) = site
        .backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"])
        .env("GENESIS_LOG_LEVEL", "DEBUG")
        .expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let backup_path = report["backup_path"].as_str().unwrap().to_string();
    let name = file_name(&backup_path);
    assert!(name.starts_with("gm-sandbox-mesh-") && name.ends_with(".tar.gz.age"), "{name}");
    assert_eq!(entries(&local), vec![name.clone(), format!("{name}.sig")]);
    let (sha, size) = (report["sha256"].as_str().unwrap(), report["size_bytes"].as_u64().unwrap());
    assert_eq!(report["signed"], true, "{report}");
    assert_eq!(report["manifest"]["network_name"], "sandbox-mesh", "{report}");
    assert_eq!(report["copies"].as_array().unwrap().len(), 2, "{report}");

    let here = copy(&report, "local");
    assert_eq!((here["ok"].clone(), here["url"].clone()), (Value::Bool(true), Value::from(backup_path.clone())));
    assert_eq!((here["sha256"].as_str(), here["size_bytes"].as_u64()), (Some(sha), Some(size)), "{report}");
    assert!(here["error"].is_null(), "{report}");

    let url = format!("{URL}/{name}");
    let there = copy(&report, "offsite");
    assert_eq!((there["ok"].clone(), there["url"].clone()), (Value::Bool(true), Value::from(url.clone())), "{report}");
    assert_eq!((there["sha256"].as_str(), there["size_bytes"].as_u64()), (Some(sha), Some(size)), "{report}");
    let etag = there["etag"].as_str().unwrap_or_else(|| panic!("no etag: {report}")).to_string();
    assert!(!etag.is_empty());
    assert!(there["object_lock"].is_null() && there["error"].is_null(), "{report}");

    // The bucket holds exactly the archive and its signature, byte for byte the local ones.
    assert_eq!(site.objects("acme"), vec![name.clone(), format!("{name}.sig")]);
    let object = site.s3.object(BUCKET, &format!("acme/{name}"));
    assert_eq!(std::fs::read(&object).unwrap(), std::fs::read(&backup_path).unwrap());
    assert_eq!(
        std::fs::read(site.s3.object(BUCKET, &format!("acme/{name}.sig"))).unwrap(),
        std::fs::read(format!("{backup_path}.sig")).unwrap()
    );
    assert_eq!(gm::crypto::digest::sha256_hex(&std::fs::read(&object).unwrap()), sha);

    // The ledger records the upload: the s3:// URL, its hash and size, the ETag and the lock.
    let (history, _) = Gm::new(&["managed", "history", "--home", site.h(), "--kind", "backup", "--json"]).expect(0);
    assert!(history.contains(&format!("\"artifact\":\"{url}\"")), "{history}");
    let rows: Vec<LedgerRow> = ledger_rows(&site.home, &url).into_iter().filter(|r| r.kind == "backup").collect();
    assert_eq!(rows.len(), 1, "one ledger row for the upload: {rows:?}");
    let row = &rows[0];
    assert_eq!((row.outcome.as_str(), row.sha256.as_deref()), ("ok", Some(sha)), "{rows:?}");
    assert!(row.size_bytes == Some(size as i64) || row.details_json.contains(&size.to_string()), "size: {rows:?}");
    let details = json(&row.details_json);
    assert_eq!(details["etag"].as_str(), Some(etag.as_str()), "{details}");
    assert!(details.get("object_lock").is_some() || details.get("lock").is_some(), "lock in details: {details}");
    // The object verifies like a file, named as an argument or with --backup.
    let k = site.key.to_str().unwrap();
    for target in [&[url.as_str()][..], &["--backup", url.as_str()][..]] {
        let args = [&["managed", "verify"], target, &["--identity", k, "--home", site.h(), "--json"]].concat();
        let (stdout, stderr) = Gm::new(&args).env("GENESIS_LOG_LEVEL", "DEBUG").expect(0);
        site.assert_no_secret(&[&stdout, &stderr]);
        let v = json(&stdout);
        assert_eq!(v["ok"], true, "{target:?}: {stdout}");
        for check in ["decrypt", "manifest", "snapshot_sha256", "integrity_check", "signature"] {
            assert!(stdout.contains(&format!("\"name\":\"{check}\",\"ok\":true")), "{check}: {stdout}");
        }
    }

    site.assert_no_secret(&[&history]);
    site.assert_no_secret_in_ledger();
}

#[test]
fn an_s3_only_backup_restores_and_drills_from_the_bucket() {
    let site = Site::new("s3-only");
    let argv = ArgvWatch::start(&site.s3);
    let db = site.home.join("na.db");
    add_invite(&db, "before-backup");
    let before_local = entries(&site.home.join("backups"));
    let (stdout, stderr) = site.backup(&["--dir", URL, "--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let copies = report["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "no local copy: {report}");
    let first_url = copy(&report, "offsite")["url"].as_str().unwrap().to_string();
    assert_eq!(copy(&report, "offsite")["ok"], true, "{report}");
    let first = file_name(&first_url);
    assert_eq!(site.objects("acme"), vec![first.clone(), format!("{first}.sig")]);
    assert_eq!(entries(&site.home.join("backups")), before_local, "nothing written to the home's folder");

    // Restore from the bucket: the state is the backup's again.
    add_invite(&db, "after-backup");
    assert_eq!(invites(&db), 2);
    let (stdout, stderr) = Gm::restore(&site.home, Path::new(&first_url), &site.key).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert_eq!(invites(&db), 1, "restored from {first_url}");
    let scratch: Vec<String> = entries_all(&site.home).into_iter().filter(|n| n.starts_with(".gm-fetch")).collect();
    assert_eq!(scratch, Vec::<String>::new(), "the download beside the database is removed");

    // A drill of that object, then of the newest in the prefix.
    let report_file = site.dir.join("drill.json");
    let (stdout, stderr) =
        Gm::drill(&site.home, Path::new(&first_url), &site.key, &["--json", "--report", report_file.to_str().unwrap()])
            .expect(0);
    site.assert_no_secret(&[&stdout, &stderr, &std::fs::read_to_string(&report_file).unwrap()]);
    assert!(stdout.contains(&first), "{stdout}");
    next_second();
    let (stdout, _) = site.backup(&["--dir", URL, "--json"]).expect(0);
    let second = file_name(copy(&json(&stdout), "offsite")["url"].as_str().unwrap());
    assert_ne!(first, second);
    // A newer backup in a sub-prefix is not this prefix's (a folder's --latest does not descend either).
    next_second();
    let (stdout, _) = site.backup(&["--dir", &format!("{URL}/nested"), "--json"]).expect(0);
    let nested = file_name(copy(&json(&stdout), "offsite")["url"].as_str().unwrap());
    assert!(site.objects("acme/nested").contains(&nested));
    // A newer, unsigned object planted in the prefix is passed over, not drilled.
    let planted = "gm-sandbox-mesh-20991231T235959Z.tar.gz.age";
    std::fs::write(site.s3.object(BUCKET, &format!("acme/{planted}")), b"forged").unwrap();
    let (stdout, stderr) = Gm::drill_latest(&site.home, Path::new(URL), &site.key, &["--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let drill = json(&stdout);
    assert_eq!(drill["backup"], Value::from(format!("{URL}/{second}")), "the newest signed one: {drill}");
    assert_eq!(drill["ok"], true, "{drill}");
    let passed_over = drill["passed_over"].as_array().unwrap_or_else(|| panic!("{drill}"));
    assert!(passed_over.iter().any(|p| p["name"] == planted), "{drill}");
    let (history, _) = Gm::new(&["managed", "history", "--home", site.h(), "--json"]).expect(0);
    for kind in ["\"kind\":\"restore\"", "\"kind\":\"drill\""] {
        assert!(history.contains(kind), "{kind}: {history}");
    }
    site.assert_no_secret_in_ledger();
    argv.assert_clean();
}

#[test]
fn a_bare_url_under_a_configured_destination_uses_its_credentials() {
    let site = Site::new("s3-under");
    let local = site.dir.join("local");
    let nested = format!("{URL}/nested");
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", &nested, "--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let name = file_name(report["backup_path"].as_str().unwrap());
    let uploaded = report["copies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["destination"] != "local")
        .unwrap_or_else(|| panic!("no S3 copy: {report}"));
    assert_eq!(uploaded["ok"], true, "{report}");
    assert_eq!(uploaded["url"], Value::from(format!("{nested}/{name}")), "{report}");
    assert_eq!(site.objects("acme/nested"), vec![name.clone(), format!("{name}.sig")]);

    // A trailing slash names the same prefix.
    let (stdout, _) = site.backup(&["--dir", &format!("{URL}/"), "--json"]).expect(0);
    let url = copy(&json(&stdout), "offsite")["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{URL}/{}", file_name(&url)), "one slash between prefix and name");

    // "Under" means below the prefix as a path: s3://gm-backups/acme2 is not under …/acme, so it
    // gets no credentials from that destination (and the environment has none).
    let sibling = format!("{URL}2");
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", &sibling]).expect(2);
    let (error, hint) = text_error(&stderr);
    assert!(error.contains(&sibling) && hint.contains("AWS_ACCESS_KEY_ID"), "{stdout}{stderr}");
    assert_eq!(site.objects("acme2"), Vec::<String>::new());
}

/// A URL gm cannot use is refused before anything is written, quoting it, with the URL's shape
/// as the hint; a `..` segment never reaches the server.
#[test]
fn malformed_s3_urls_are_refused_before_anything_is_written() {
    let site = Site::new("s3-urls");
    let local = site.dir.join("local");
    for url in ["s3://", "s3:///acme", "s3://ab/acme", "s3://Bad_Bucket/acme", "s3://gm-backups/../acme"] {
        for flag in ["--to", "--dir"] {
            let mut args = vec![flag, url];
            if flag == "--to" {
                args.extend(["--dir", local.to_str().unwrap()]);
            }
            let (stdout, stderr) = site.backup(&args).expect(2);
            let (error, hint) = text_error(&stderr);
            assert!(error.contains(url) && hint.contains("s3://bucket/prefix"), "{flag} {url}: {stdout}{stderr}");
            assert_eq!(entries(&local), Vec::<String>::new(), "{flag} {url}: nothing written");
            assert_eq!(site.s3.objects(BUCKET, ""), Vec::<String>::new(), "{flag} {url}: nothing uploaded");
        }
    }
    assert_eq!(entries(&site.s3.root), vec![BUCKET.to_string()], "nothing outside the bucket either");
}

#[test]
fn without_configuration_the_aws_environment_names_server_and_keys() {
    let site = Site::unconfigured("s3-env");
    let local = site.dir.join("local");
    let url = format!("s3://{BUCKET}/from-env");
    let (stdout, stderr) =
        site.aws_env(site.backup(&["--dir", local.to_str().unwrap(), "--to", &url, "--json"])).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let name = file_name(report["backup_path"].as_str().unwrap());
    assert_eq!(site.objects("from-env"), vec![name.clone(), format!("{name}.sig")]);
    let object_url = format!("{url}/{name}");
    let (stdout, stderr) = site.aws_env(site.verify(&object_url, &[])).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);

    // Without the variables there are no credentials: a configuration error, refused before
    // anything is written (validate first, then act), with a hint naming the variables.
    let again = site.dir.join("again");
    let (stdout, stderr) = site
        .backup(&["--dir", again.to_str().unwrap(), "--to", &url])
        .env("AWS_ENDPOINT_URL", &site.s3.endpoint)
        .expect(2);
    let (error, hint) = text_error(&stderr);
    assert!(error.contains(&url) && hint.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert_eq!((stdout.as_str(), entries(&again)), ("", vec![]), "nothing written: {stderr}");
    assert_eq!(archives(&site.objects("from-env")), vec![name], "nothing more uploaded");
}

/// A destination that names only its URL: endpoint, region and keys from the AWS environment.
#[test]
fn a_destination_without_endpoint_region_or_keys_takes_them_from_the_environment() {
    let site = Site::unconfigured("s3-env-endpoint");
    site.append_toml(&format!("\n[[backup.destinations]]\nname = \"offsite\"\nurl = \"{URL}\"\n"));
    let (stdout, stderr) = site.aws_env(site.backup(&["--dir", URL, "--json"])).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let upload = copy(&json(&stdout), "offsite").clone();
    assert_eq!(upload["ok"], true, "{upload}");
    let name = file_name(upload["url"].as_str().unwrap());
    assert_eq!(site.objects("acme"), vec![name.clone(), format!("{name}.sig")]);
}

/// Names are `[a-z0-9-]` and unique: anything else is a configuration error that names the
/// field, before anything is written.
#[test]
fn destination_names_must_be_lowercase_and_unique() {
    let site = Site::new("s3-names");
    let creds = site.credentials_file("s3-second.env");
    let good = std::fs::read_to_string(site.home.join("gm.toml")).unwrap();
    for (bad, why) in [("Off Site", "not [a-z0-9-]"), ("offsite", "a duplicate")] {
        std::fs::write(site.home.join("gm.toml"), &good).unwrap();
        site.add_destination(bad, &format!("s3://{BUCKET}/second"), &creds, "");
        let local = site.dir.join("local");
        let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite"]).expect(2);
        let (error, hint) = text_error(&stderr);
        assert!(error.contains("gm.toml") && error.contains(bad), "{why}: {stderr}");
        assert!(!hint.is_empty(), "{why}: {stderr}");
        assert_eq!((stdout.as_str(), entries(&local)), ("", vec![]), "{why}: nothing written");
        assert_eq!(site.objects(""), Vec::<String>::new(), "{why}: nothing uploaded");
    }
}

#[test]
fn a_systemd_credential_supplies_the_keys() {
    let site = Site::unconfigured("s3-cred");
    let creds = site.dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    // As systemd lays it out: read-only for the service's user. A session token too (s3s-fs
    // checks it is signed, not what it says): it must not leak either.
    let token = "gm-test-session-token-8c1f";
    let text = format!("{}AWS_SESSION_TOKEN={token}\n", site.credentials_text(&site.s3.secret));
    write_private(&creds.join("s3-offsite"), &text);
    std::fs::set_permissions(creds.join("s3-offsite"), std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    site.add_destination("offsite", URL, "credential = \"s3-offsite\"\n", "");
    let (stdout, stderr) =
        site.backup(&["--dir", URL, "--json"]).env("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert!(!stdout.contains(token) && !stderr.contains(token), "{stdout}{stderr}");
    let name = file_name(copy(&json(&stdout), "offsite")["url"].as_str().unwrap());
    assert_eq!(site.objects("acme"), vec![name.clone(), format!("{name}.sig")]);
}

#[test]
fn a_credentials_file_others_can_read_is_refused() {
    let site = Site::new("s3-mode");
    let file = site.home.join("s3-offsite.env");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (stdout, stderr) = site.backup(&["--dir", URL]).expect(2);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert!(stderr.contains("error: ") && stderr.contains("s3-offsite.env"), "{stderr}");
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert_eq!(site.objects(""), Vec::<String>::new(), "nothing uploaded");
}

/// Each failure, next to a destination that works: exit 2, an error naming the failed destination
/// and a hint; the local copy and the good upload are complete; nothing under the failed name.
#[test]
fn wrong_keys_a_missing_bucket_or_no_server_fail_that_copy_and_keep_the_others() {
    let site = Site::new("s3-fail");
    let wrong_secret = format!("{}-wrong", site.s3.secret);
    write_private(&site.home.join("s3-wrong.env"), &site.credentials_text(&wrong_secret));
    site.add_destination("wrong-keys", &format!("s3://{BUCKET}/wrong"), "credentials_file = \"s3-wrong.env\"\n", "");
    let creds = site.credentials_file("s3-good.env");
    site.s3.missing_bucket("no-such-bucket");
    site.add_destination("no-bucket", "s3://no-such-bucket/acme", &creds, "");
    site.add_destination_at("no-server", &format!("s3://{BUCKET}/dead"), "http://127.0.0.1:1", &creds, "");
    // Each failure with the bucket its error names and a word its hint must hold (what to check).
    let cases = [
        ("wrong-keys", "s3://gm-backups", "s3-wrong.env"),
        ("no-bucket", "s3://no-such-bucket", "bucket"),
        ("no-server", "s3://gm-backups", "endpoint"),
    ];
    for (bad, bucket, remedy) in cases {
        for mode in ["text", "json"] {
            // Each run's object name carries its second; the good destination gets every one.
            next_second();
            let ctx = format!("{bad}, {mode}");
            let local = site.dir.join(&format!("local-{bad}-{mode}"));
            let before = site.objects("acme");
            let mut args = vec!["--dir", local.to_str().unwrap(), "--to", "offsite", "--to", bad];
            if mode == "json" {
                args.push("--json");
            }
            let (stdout, stderr) = site.backup(&args).expect(2);
            site.assert_no_secret(&[&stdout, &stderr]);
            assert!(!stdout.contains(&wrong_secret) && !stderr.contains(&wrong_secret), "{ctx}: {stderr}");
            let (error, hint) = if mode == "json" { json_error(&stderr) } else { text_error(&stderr) };
            assert!(error.contains(bad) || error.contains(bucket), "{ctx}: the error names the destination: {stderr}");
            assert!(hint.contains(remedy), "{ctx}: a hint for this failure: {stderr}");

            // The local copy is complete and verifies.
            let local_files = entries(&local);
            assert_eq!(local_files.len(), 2, "{ctx}: {local_files:?}");
            let name = archives(&local_files).pop().unwrap();
            site.verify(local.join(&name).to_str().unwrap(), &[]).expect(0);
            // The good destination got it; the failed one has nothing, under any name.
            let mut expected = before.clone();
            expected.extend([name.clone(), format!("{name}.sig")]);
            expected.sort();
            assert_eq!(site.objects("acme"), expected, "{ctx}");
            assert_eq!(site.objects("wrong"), Vec::<String>::new(), "{ctx}");
            assert_eq!(site.objects("dead"), Vec::<String>::new(), "{ctx}");
            assert!(!site.s3.root.join("no-such-bucket").exists(), "{ctx}");

            if mode == "json" {
                let report = json(&stdout);
                assert_eq!(copy(&report, "local")["ok"], true, "{ctx}: {report}");
                assert_eq!(copy(&report, "offsite")["ok"], true, "{ctx}: {report}");
                let failed = copy(&report, bad);
                assert_eq!(failed["ok"], false, "{ctx}: {report}");
                assert!(failed["error"].as_str().is_some_and(|e| !e.is_empty()), "{ctx}: {report}");
                assert!(failed["etag"].is_null() && failed["object_lock"].is_null(), "{ctx}: {report}");
            }
        }
        // Both runs' failed copies are in the ledger, by their s3:// URL.
        let c = rusqlite::Connection::open(site.home.join("gm-ops.db")).unwrap();
        let failed: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'backup' AND outcome = 'failed'
                 AND artifact LIKE 's3://%' AND details_json LIKE ?1",
                [format!("%\"destination\":\"{bad}\"%")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(failed, 2, "{bad}: a failed row per run");
        if bad == "wrong-keys" {
            // Refused by the server's signature check, not by anything gm decided alone.
            assert!(site.s3.log().contains("SignatureDoesNotMatch"), "{}", site.s3.log());
        }
    }
    site.assert_no_secret_in_ledger();
}

/// s3s-fs ignores Object Lock headers: gm must notice the lock was not applied and say so.
#[test]
fn object_lock_the_bucket_does_not_apply_is_reported_failed_not_locked() {
    let site = Site::unconfigured("s3-lock");
    let creds = site.credentials_file("s3-offsite.env");
    site.add_destination(
        "offsite",
        URL,
        &creds,
        "[backup.destinations.object_lock]\nmode = \"governance\"\ndays = 30\n",
    );
    let local = site.dir.join("local");
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite"]).expect(2);
    site.assert_no_secret(&[&stdout, &stderr]);
    let (error, hint) = text_error(&stderr);
    assert!(error.to_lowercase().contains("object lock") && error.contains(URL), "{stderr}");
    assert!(hint.to_lowercase().contains("object lock"), "a hint about the lock, not a generic one: {stderr}");
    next_second();
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(2);
    assert!(json_error(&stderr).0.to_lowercase().contains("object lock"), "{stderr}");
    let report = json(&stdout);
    let upload = copy(&report, "offsite");
    assert_eq!(upload["ok"], false, "{report}");
    assert!(upload["object_lock"].is_null(), "never claimed locked: {report}");
    assert!(upload["error"].as_str().unwrap_or_default().to_lowercase().contains("object lock"), "{report}");
    assert_eq!(copy(&report, "local")["ok"], true, "{report}");
    // The ledger records the failed copy, not a locked one.
    let url = upload["url"].as_str().unwrap();
    let rows = ledger_rows(&site.home, url);
    assert!(rows.len() == 1 && rows[0].outcome == "failed", "{url}: {rows:?}");
    let names = archives(&entries(&local));
    assert_eq!(names.len(), 2, "both runs kept their local copy: {names:?}");
    for name in names {
        site.verify(local.join(&name).to_str().unwrap(), &[]).expect(0);
    }
}

/// A byte flipped in the bucket: verify and restore-drill fail (exit 1) as for a tampered file,
/// restore changes nothing; a restore while the NA serves is refused first, whatever the object.
#[test]
fn a_tampered_object_fails_verify_and_restore_changes_nothing() {
    let site = Site::new("s3-tamper");
    let (stdout, _) = site.backup(&["--dir", URL, "--json"]).expect(0);
    let url = copy(&json(&stdout), "offsite")["url"].as_str().unwrap().to_string();
    site.verify(&url, &[]).expect(0);
    let object = site.s3.object(BUCKET, &format!("acme/{}", file_name(&url)));
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();
    let (stdout, stderr) = site.verify(&url, &[]).expect(1);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert!(stdout.starts_with("FAILED") && stdout.contains("damaged or forged backup"), "{stdout}");
    let db = site.home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    let (_, stderr) = Gm::restore(&site.home, Path::new(&url), &site.key).expect(1);
    assert!(stderr.contains("damaged or forged backup"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing restored");
    let (stdout, stderr) = Gm::drill(&site.home, Path::new(&url), &site.key, &["--json"]).expect(1);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert_eq!(json(&stdout)["ok"], false, "{stdout}");

    let server = crate::harness::GmServer::start(&site.home, &["--no-scheduler"]);
    let (_, stderr) = Gm::restore(&site.home, Path::new(&url), &site.key).expect(2);
    assert!(stderr.contains("is served by a running gm"), "{stderr}");
    drop(server);
    let scratch: Vec<String> = entries_all(&site.home).into_iter().filter(|n| n.starts_with(".gm-fetch")).collect();
    assert_eq!(scratch, Vec::<String>::new(), "no download left beside the database");
}

/// An object without its `.sig` object fails verify as an unsigned file does (exit 1), and the
/// report names what is missing by its s3:// URL, not by the scratch file it was downloaded to
/// (a path that is gone when the user reads it).
#[test]
fn an_object_without_its_signature_fails_verify_naming_the_signature_url() {
    let site = Site::new("s3-nosig");
    let (stdout, _) = site.backup(&["--dir", URL, "--json"]).expect(0);
    let url = copy(&json(&stdout), "offsite")["url"].as_str().unwrap().to_string();
    std::fs::remove_file(site.s3.object(BUCKET, &format!("acme/{}.sig", file_name(&url)))).unwrap();
    let (stdout, stderr) = site.verify(&url, &[]).expect(1);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert!(stdout.starts_with(&format!("FAILED: {url}\n")), "{stdout}");
    assert!(stdout.contains("FAIL signature") && stdout.contains("--allow-unsigned"), "{stdout}");
    assert!(stdout.contains(&format!("{url}.sig")), "names the missing object: {stdout}");
    assert!(!stdout.contains(".gm-fetch") && !stdout.contains(&std::env::temp_dir().display().to_string()), "{stdout}");
}

#[test]
fn prune_in_a_bucket_deletes_older_signed_backups_and_never_unsigned_ones() {
    let site = Site::new("s3-prune");
    let mut names = Vec::new();
    for i in 0..2 {
        if i > 0 {
            next_second();
        }
        let (stdout, _) = site.backup(&["--dir", URL, "--json"]).expect(0);
        names.push(file_name(copy(&json(&stdout), "offsite")["url"].as_str().unwrap()));
    }
    // Planted straight into the bucket: a far-future backup name without a signature, another
    // file, and the newest backup of all, genuine but signed by another sovereign's key (F13: it
    // must not count, or keep-last 1 would delete this sovereign's newest).
    let planted = "gm-sandbox-mesh-20991231T235959Z.tar.gz.age";
    std::fs::write(site.s3.object(BUCKET, &format!("acme/{planted}")), b"forged").unwrap();
    std::fs::write(site.s3.object(BUCKET, "acme/notes.txt"), b"keep me").unwrap();
    let other_dir = TempDir::new("s3-prune-other");
    let other = home_with_schema(&other_dir);
    next_second();
    let (stdout, _) = Gm::backup(&other, &site.recipient, &other_dir.join("b")).expect(0);
    let foreign = file_name(stdout.trim());
    for name in [foreign.clone(), format!("{foreign}.sig")] {
        std::fs::copy(other_dir.join("b").join(&name), site.s3.object(BUCKET, &format!("acme/{name}"))).unwrap();
    }
    // The older backup also sits in a sub-prefix and in a sibling prefix (another NA's folder,
    // say): not this prefix's to prune.
    let mut elsewhere = Vec::new();
    for place in ["acme/nested", "acme2"] {
        std::fs::create_dir_all(site.s3.root.join(BUCKET).join(place)).unwrap();
        for name in [names[0].clone(), format!("{}.sig", names[0])] {
            let from = site.s3.object(BUCKET, &format!("acme/{name}"));
            std::fs::copy(from, site.s3.object(BUCKET, &format!("{place}/{name}"))).unwrap();
            elsewhere.push(format!("{place}/{name}"));
        }
    }
    let all = site.objects("acme");
    assert_eq!(all.len(), 10, "{all:?}");

    let prune = |extra: &[&str]| {
        Gm::new(&[&["managed", "prune", "--home", site.h(), "--dir", URL, "--keep-last", "1"], extra].concat())
    };
    let (stdout, stderr) = prune(&["--dry-run"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    assert_eq!(site.objects("acme"), all, "a dry run deletes nothing: {stdout}");
    let (stdout, stderr) = prune(&["--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    assert_eq!(report["deleted"], 1, "{report}");
    let ignored = report["ignored"].as_array().unwrap_or_else(|| panic!("{report}"));
    for name in [planted, foreign.as_str()] {
        assert!(ignored.iter().any(|i| i["name"] == name), "{name} reported as not verified: {report}");
    }
    let mut kept = vec![names[1].clone(), format!("{}.sig", names[1]), planted.to_string(), "notes.txt".to_string()];
    kept.extend([foreign.clone(), format!("{foreign}.sig")]);
    kept.extend(elsewhere.iter().filter_map(|e| e.strip_prefix("acme/")).map(str::to_string));
    kept.sort();
    assert_eq!(site.objects("acme"), kept, "the older backup and its signature are gone, nothing else");
    assert_eq!(site.objects("acme2").len(), 2, "the sibling prefix is untouched");
    assert_eq!(std::fs::read(site.s3.object(BUCKET, &format!("acme/{planted}"))).unwrap(), b"forged");
    // The real run is in the ledger (the dry run is not), under the bucket's URL.
    let rows = ledger_rows(&site.home, URL);
    let prunes: Vec<&LedgerRow> = rows.iter().filter(|r| r.kind == "prune").collect();
    assert!(prunes.len() == 1 && prunes[0].outcome == "ok", "{rows:?}");
    site.assert_no_secret_in_ledger();
}

/// Adds `mib` MiB of random (incompressible) blobs to the database, in a table of its own.
fn add_filler(db: &Path, mib: u32) {
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
fn spawn_once_uploading(site: &Site, extra: &[&str], log: &Path) -> std::process::Child {
    let mut child = Command::new(GM)
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
        "the backup ended ({exited:?}) before a multipart part reached the server; raise FILLER_MIB\ngm:\n{}\ns3s-fs:\n{}",
        std::fs::read_to_string(log).unwrap_or_default(),
        site.s3.log()
    );
    child
}

/// kill -9 while the archive is being uploaded (multipart parts appearing in the server's root):
/// no object under the final name; the next run of the same home aborts the abandoned upload, so
/// its record and parts are gone from the server.
#[test]
fn a_killed_upload_leaves_no_object_and_the_next_run_aborts_it() {
    let site = Site::new("s3-kill");
    let db = site.home.join("na.db");
    add_filler(&db, FILLER_MIB);
    let log = site.dir.join("killed.log");
    let mut child = spawn_once_uploading(&site, &["--dir", URL], &log);
    child.kill().unwrap();
    child.wait().unwrap();
    let abandoned = upload_ids(&site.s3.upload_files());
    assert!(!abandoned.is_empty(), "the killed run's upload record: {:?}", site.s3.upload_files());
    assert_eq!(archives(&site.objects("acme")), Vec::<String>::new(), "no object under the final name");

    // The next run aborts it and uploads its own, in several parts (gm sends 8 MiB parts; 20 MiB
    // of random data is three), which the server assembles into the local copy's exact bytes.
    rusqlite::Connection::open(&db).unwrap().execute_batch("DELETE FROM filler WHERE rowid > 20; VACUUM;").unwrap();
    let local = site.dir.join("local");
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr, &std::fs::read_to_string(&log).unwrap_or_default()]);
    for id in &abandoned {
        assert_eq!(site.s3.files_of_upload(id), Vec::<String>::new(), "upload {id} aborted: {stderr}");
    }
    assert_eq!(site.s3.upload_files(), Vec::<String>::new(), "no upload left in progress");
    let report = json(&stdout);
    let name = file_name(copy(&report, "offsite")["url"].as_str().unwrap());
    assert_eq!(archives(&site.objects("acme")), vec![name.clone()]);
    let object = std::fs::read(site.s3.object(BUCKET, &format!("acme/{name}"))).unwrap();
    assert!(object.len() > 16 << 20, "more than two parts: {} bytes", object.len());
    assert!(object == std::fs::read(local.join(&name)).unwrap(), "the object is the local copy, byte for byte");
    assert_eq!(Some(gm::crypto::digest::sha256_hex(&object).as_str()), report["sha256"].as_str());
}

/// The secret stays out of the reports built from S3 runs: the incident bundle (ops ledger,
/// config fingerprints, every entry) and the readiness report, whose `offsite_backup` check sees
/// the copy verified from the bucket and drilled from off-host, and warns that it is not locked.
#[test]
fn incident_bundles_and_readiness_carry_the_s3_runs_but_not_the_secret() {
    let site = Site::new("s3-reports");
    let local = site.dir.join("local");
    let (stdout, _) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(0);
    let url = copy(&json(&stdout), "offsite")["url"].as_str().unwrap().to_string();
    site.verify(&url, &[]).expect(0);
    Gm::drill_latest(&site.home, Path::new(URL), &site.key, &[]).expect(0);

    // Other checks fail here (no NA serving): only the report's content matters.
    let out = Gm::new(&["readiness", "--home", site.h(), "--format", "json"]).output();
    let (readiness, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    site.assert_no_secret(&[&readiness, &stderr]);
    let report = json(&readiness);
    let checks = report["checks"].as_array().unwrap_or_else(|| panic!("{readiness}"));
    let offsite = checks.iter().find(|c| c["id"] == "offsite_backup").unwrap_or_else(|| panic!("{readiness}"));
    assert_eq!(offsite["status"], "warn", "verified and drilled, but not under Object Lock: {offsite}");
    assert_eq!(offsite["evidence"]["artifact"], Value::from(url.clone()), "{offsite}");
    assert!(offsite["evidence"]["verify_ledger_id"].is_string(), "verified from the bucket: {offsite}");
    assert!(offsite["evidence"]["drill_ledger_id"].is_string(), "drilled from off-host: {offsite}");

    let bundle = site.dir.join("incident.tar.gz.age");
    let args = ["incident", "bundle", "--home", site.h(), "--since", "2020-01-01T00:00:00Z"];
    let (stdout, stderr) =
        Gm::new(&args).arg("--output").arg(bundle.to_str().unwrap()).arg("--recipient").arg(&site.recipient).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let text = std::fs::read_to_string(&site.key).unwrap();
    let identity: age::x25519::Identity = text.trim().parse().unwrap();
    let entries = crate::harness::open_archive(&bundle, &identity);
    let secret = site.s3.secret.as_bytes();
    let url_seen = entries.values().any(|b| b.windows(url.len()).any(|w| w == url.as_bytes()));
    assert!(url_seen, "the bundle's ledger holds the upload: {:?}", entries.keys());
    for (name, bytes) in &entries {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the S3 secret is in the bundle's {name}");
    }
}

/// The scheduled jobs as docs/config.md configures them: the backup job writes the local folder
/// and the destination (`destinations`), verify, restore-drill and prune jobs read the bucket
/// (`backup_dir = "s3://…"`); each `gm cron run-once` is ok, and readiness sees the off-host copy
/// verified and drilled from the bucket.
#[test]
fn scheduled_jobs_back_up_to_the_bucket_and_verify_drill_and_prune_from_it() {
    let site = Site::new("s3-cron");
    // The sandbox's own recipients file and identity (offline/backup.key), as its default jobs use.
    site.append_toml(&format!(
        "\n[cron]\n\
         [cron.jobs.backup]\nkind = \"backup\"\nschedule = \"0 */6 * * *\"\nbackup_dir = \"backups\"\n\
         destinations = [\"offsite\"]\nrecipients_file = \"backup-recipients.txt\"\n\
         [cron.jobs.verify]\nkind = \"verify\"\nschedule = \"15 */6 * * *\"\nbackup_dir = \"{URL}\"\n\
         identity_file = \"offline/backup.key\"\n\
         [cron.jobs.restore-drill]\nkind = \"restore-drill\"\nschedule = \"30 3 * * *\"\nbackup_dir = \"{URL}\"\n\
         identity_file = \"offline/backup.key\"\nreport_file = \"drills/latest.json\"\n\
         [cron.jobs.prune]\nkind = \"prune\"\nschedule = \"45 4 * * *\"\nbackup_dir = \"{URL}\"\nkeep_last = 1\n"
    ));
    let run = |job: &str| {
        let out = Gm::new(&["cron", "run-once", job, "--home", site.h()]).output();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        site.assert_no_secret(&[&stdout, &stderr]);
        assert_eq!(out.status.code(), Some(0), "job {job}:\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.starts_with(&format!("{job}: ok")), "job {job}: {stdout}");
    };
    run("backup");
    next_second();
    run("backup");
    let uploaded = archives(&site.objects("acme"));
    assert_eq!(uploaded.len(), 2, "{uploaded:?}");
    assert_eq!(archives(&entries(&site.home.join("backups"))), uploaded, "the same names in the local folder");
    for job in ["verify", "restore-drill", "prune"] {
        run(job);
    }
    // Verified and drilled: the newest object, from the bucket.
    let newest = format!("{URL}/{}", uploaded[1]);
    let ok_rows = |kind: &str| {
        ledger_rows(&site.home, &newest).into_iter().filter(|r| r.kind == kind && r.outcome == "ok").count()
    };
    assert_eq!((ok_rows("verify"), ok_rows("drill")), (1, 1), "{:?}", ledger_rows(&site.home, &newest));
    assert!(std::fs::read_to_string(site.home.join("drills/latest.json")).unwrap().contains(&newest));
    // keep_last 1 in the bucket; the local folder is not the prune job's.
    assert_eq!(archives(&site.objects("acme")), vec![uploaded[1].clone()]);
    assert_eq!(archives(&entries(&site.home.join("backups"))).len(), 2);

    let out = Gm::new(&["readiness", "--home", site.h(), "--format", "json"]).output();
    let readiness = String::from_utf8_lossy(&out.stdout).to_string();
    let report = json(&readiness);
    let offsite = report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "offsite_backup").unwrap().clone();
    assert_eq!(offsite["status"], "warn", "verified and drilled from the bucket, not locked: {offsite}");
    assert_eq!(offsite["evidence"]["artifact"], Value::from(newest), "{offsite}");
    site.assert_no_secret_in_ledger();
}

/// The server dies while the archive streams to it: that copy fails (exit 2, after gm's retries)
/// and nothing is under its final name, while the local copy written in the same pass is complete
/// and verifies.
#[test]
fn a_server_that_dies_mid_upload_fails_that_copy_and_the_local_one_is_complete() {
    let mut site = Site::new("s3-dies");
    // Three parts: the server dies after the first, with two still to send.
    add_filler(&site.home.join("na.db"), 24);
    let local = site.dir.join("local");
    let log = site.dir.join("backup.log");
    let child = spawn_once_uploading(&site, &["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"], &log);
    site.s3.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = std::fs::read_to_string(&log).unwrap();
    site.assert_no_secret(&[&stdout, &stderr]);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let report = json(&stdout);
    assert_eq!(copy(&report, "offsite")["ok"], false, "{report}");
    assert_eq!(copy(&report, "local")["ok"], true, "{report}");
    let (error, _hint) = json_error(&stderr);
    assert!(error.contains("s3://gm-backups") || error.contains("offsite"), "{stderr}");
    assert_eq!(archives(&site.objects("acme")), Vec::<String>::new(), "nothing under the final name");
    let names = archives(&entries(&local));
    assert_eq!(names.len(), 1, "{names:?}");
    let local_path = local.join(&names[0]);
    assert_eq!(report["backup_path"], Value::from(local_path.to_str().unwrap()), "{report}");
    let bytes = std::fs::read(&local_path).unwrap();
    assert_eq!(Some(gm::crypto::digest::sha256_hex(&bytes).as_str()), report["sha256"].as_str());
    site.verify(local_path.to_str().unwrap(), &[]).expect(0);
}

/// An object already under the backup's name is never overwritten: that copy fails, the object
/// keeps its bytes, the local copy is kept. (The name carries the second the backup is taken in:
/// objects are planted under every name of the next seconds.)
#[test]
fn an_object_already_under_the_name_is_never_overwritten() {
    let site = Site::new("s3-exists");
    let now = chrono::Utc::now();
    let mut planted = Vec::new();
    for s in -2..=20 {
        let stamp = (now + chrono::Duration::seconds(s)).format("%Y%m%dT%H%M%SZ");
        let key = format!("acme/gm-sandbox-mesh-{stamp}.tar.gz.age");
        std::fs::create_dir_all(site.s3.root.join(BUCKET).join("acme")).unwrap();
        std::fs::write(site.s3.object(BUCKET, &key), format!("planted {stamp}")).unwrap();
        planted.push(key);
    }
    let local = site.dir.join("local");
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(2);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let upload = copy(&report, "offsite");
    assert_eq!(upload["ok"], false, "{report}");
    let key = upload["url"].as_str().unwrap().strip_prefix("s3://gm-backups/").unwrap().to_string();
    assert!(planted.contains(&key), "the run fell within the planted seconds: {key}");
    let stamp = key.trim_start_matches("acme/gm-sandbox-mesh-").trim_end_matches(".tar.gz.age");
    assert_eq!(std::fs::read_to_string(site.s3.object(BUCKET, &key)).unwrap(), format!("planted {stamp}"));
    assert_eq!(copy(&report, "local")["ok"], true, "{report}");
    site.verify(report["backup_path"].as_str().unwrap(), &[]).expect(0);
    let (error, hint) = json_error(&stderr);
    assert!(error.contains(&format!("s3://gm-backups/{key}")) && error.contains("overwrite"), "{stderr}");
    // The storage refused nothing here: gm did, and the hint should say what to do about it.
    assert!(!hint.contains("the storage refused"), "a hint that fits the failure: {stderr}");
}

/// `--latest` trusts an object only when its listed size is the signed one: a replacement of
/// another size is passed over (named), and the newest genuine backup is drilled.
#[test]
fn latest_passes_over_an_object_whose_size_is_not_the_signed_one() {
    let site = Site::new("s3-size");
    let mut urls = Vec::new();
    for i in 0..2 {
        if i > 0 {
            next_second();
        }
        let (stdout, _) = site.backup(&["--dir", URL, "--json"]).expect(0);
        urls.push(copy(&json(&stdout), "offsite")["url"].as_str().unwrap().to_string());
    }
    let newest = site.s3.object(BUCKET, &format!("acme/{}", file_name(&urls[1])));
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(b"appended");
    std::fs::write(&newest, bytes).unwrap();
    let (stdout, stderr) = Gm::drill_latest(&site.home, Path::new(URL), &site.key, &["--json"]).expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let drill = json(&stdout);
    assert_eq!(drill["backup"], Value::from(urls[0].clone()), "{drill}");
    let passed_over = drill["passed_over"].as_array().unwrap_or_else(|| panic!("{drill}"));
    assert!(passed_over.iter().any(|p| p["name"] == file_name(&urls[1]).as_str()), "{drill}");
    // Read by name, it fails verify on its bytes.
    site.verify(&urls[1], &[]).expect(1);
}

/// `/metrics` carries, per destination, when its newest copy was stored and its size; a failed
/// copy does not move it.
#[test]
fn metrics_show_each_destinations_newest_copy() {
    let site = Site::new("s3-metrics");
    let local = site.dir.join("local");
    let (stdout, _) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(0);
    let size = json(&stdout)["size_bytes"].as_u64().unwrap();
    // A later run whose copy to offsite fails (no server there any more).
    let creds = site.credentials_file("s3-dead.env");
    site.add_destination_at("dead", &format!("s3://{BUCKET}/dead"), "http://127.0.0.1:1", &creds, "");
    next_second();
    site.backup(&["--dir", local.to_str().unwrap(), "--to", "dead"]).expect(2);
    let server = crate::harness::GmServer::start(&site.home, &["--no-scheduler"]);
    let metrics = server.get("/metrics").text();
    let sample = |name: &str, destination: &str| {
        let prefix = format!("{name}{{destination=\"{destination}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    };
    let size_name = "gm_backup_destination_size_bytes";
    assert_eq!(sample(size_name, "offsite"), Some(size.to_string()), "{metrics}");
    assert!(sample(size_name, "local").is_some(), "{metrics}");
    let time_name = "gm_backup_destination_last_success_timestamp_seconds";
    let (offsite, newest_local) = (sample(time_name, "offsite").unwrap(), sample(time_name, "local").unwrap());
    assert!(offsite.parse::<i64>().unwrap() <= newest_local.parse::<i64>().unwrap(), "{metrics}");
    assert_eq!(sample(time_name, "dead"), None, "a destination that never succeeded has no sample: {metrics}");
}

/// Reading from the bucket is verify of a file, downloaded: the same outcome and exit code for the
/// same backup as a file and as an object, the scratch copy removed afterwards (in `$TMPDIR`),
/// also when `[backup] max_unpacked_bytes` is below the archive's size.
#[test]
fn verify_of_an_object_ends_as_verify_of_the_same_file_and_leaves_no_scratch() {
    let site = Site::new("s3-same");
    let local = site.dir.join("local");
    let (stdout, _) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(0);
    let report = json(&stdout);
    let (file, url) = (report["backup_path"].as_str().unwrap(), copy(&report, "offsite")["url"].as_str().unwrap());
    let tmp = site.dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let verify = |target: &str| site.verify(target, &[]).env("TMPDIR", tmp.to_str().unwrap()).output();
    for target in [file, url] {
        assert_eq!(verify(target).status.code(), Some(0), "{target}");
        assert_eq!(entries_all(&tmp), Vec::<String>::new(), "{target}: the scratch copy is removed");
    }
    // A limit below the archive's size: the file fails its decrypt check (exit 1); the object
    // must end the same way, not as a run that could not start.
    let toml = std::fs::read_to_string(site.home.join("gm.toml")).unwrap();
    let capped = toml.replacen("[backup]\n", "[backup]\nmax_unpacked_bytes = 1000\n", 1);
    assert_ne!(toml, capped);
    std::fs::write(site.home.join("gm.toml"), capped).unwrap();
    let as_file = verify(file);
    assert_eq!(as_file.status.code(), Some(1), "{}", String::from_utf8_lossy(&as_file.stdout));
    let as_object = verify(url);
    assert_eq!(entries_all(&tmp), Vec::<String>::new(), "the partial download is removed");
    let stderr = String::from_utf8_lossy(&as_object.stderr);
    assert!(!stderr.contains("the storage refused"), "the storage refused nothing; the limit did: {stderr}");
    assert_eq!(as_object.status.code(), as_file.status.code(), "{stderr}");
}

/// Every name in `folder`, hidden ones included.
fn entries_all(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}
