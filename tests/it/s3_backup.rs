//! Off-host backups to S3-compatible object storage (issue 17), the backup side, end to end against
//! a real S3 server (s3s-fs, `tests/it/s3_server.rs`, which checks SigV4): `gm managed backup --to
//! NAME` and `--dir s3://…` upload the same signed bytes a local folder gets
//! (`<prefix>/gm-<network>-<UTC>.tar.gz.age` and its `.sig`), report every copy (`copies` in
//! `--json`), record it in the ops ledger and `/metrics`; credentials come from a private file, a
//! systemd credential or the AWS environment and never show in any output; a copy that fails
//! (wrong keys, no bucket, no server, a server dying mid-upload, Object Lock not applied, a name
//! already taken) exits 2 with an error and a hint, keeps the other copies and leaves nothing under
//! the final name; a killed upload leaves no object and the next run aborts it. Reading back is in
//! `s3_restore.rs`; the shared `Site` in `s3_site.rs`.
//!
//! Every assertion looks at what really happened: the files under the server's root, exit codes,
//! the JSON fields, the ops ledger's rows.

use serde_json::Value;

use crate::harness::Gm;
use crate::s3_server::upload_ids;
use crate::s3_site::{
    add_filler, archives, copy, entries, file_name, json, json_error, ledger_rows, next_second, spawn_once_uploading,
    text_error, write_private, LedgerRow, Site, BUCKET, FILLER_MIB, URL,
};

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

/// s3s-fs ignores Object Lock headers: gm must notice the lock was not applied and say so, for a
/// single PUT and for a multipart upload.
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
    // Also when the archive goes up in several parts (a multipart upload, not a single PUT).
    add_filler(&site.home.join("na.db"), 12);
    next_second();
    let (stdout, stderr) = site.backup(&["--dir", local.to_str().unwrap(), "--to", "offsite", "--json"]).expect(2);
    let upload = copy(&json(&stdout), "offsite").clone();
    assert!(upload["size_bytes"].as_u64().unwrap() > 8 << 20, "more than one part: {upload}");
    assert!(upload["ok"] == false && upload["object_lock"].is_null(), "{upload}");
    assert!(json_error(&stderr).0.to_lowercase().contains("object lock"), "{stderr}");
    let names = archives(&entries(&local));
    assert_eq!(names.len(), 3, "every run kept its local copy: {names:?}");
    for name in names {
        site.verify(local.join(&name).to_str().unwrap(), &[]).expect(0);
    }
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
    // The upload id is journalled beside the ops ledger (docs/offsite-backups.md) for the next run.
    let journal = site.home.join(".gm-s3-uploads");
    assert!(!entries(&journal).is_empty(), "the killed run's upload is journalled in {}", journal.display());

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
    let left = std::fs::read_dir(&journal).map(|rd| rd.count()).unwrap_or(0);
    assert_eq!(left, 0, "the journal {} is empty again", journal.display());
    let report = json(&stdout);
    let name = file_name(copy(&report, "offsite")["url"].as_str().unwrap());
    assert_eq!(archives(&site.objects("acme")), vec![name.clone()]);
    let object = std::fs::read(site.s3.object(BUCKET, &format!("acme/{name}"))).unwrap();
    assert!(object.len() > 16 << 20, "more than two parts: {} bytes", object.len());
    assert!(object == std::fs::read(local.join(&name)).unwrap(), "the object is the local copy, byte for byte");
    assert_eq!(Some(gm::crypto::digest::sha256_hex(&object).as_str()), report["sha256"].as_str());
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

/// `gm config check` resolves each destination (endpoint, credentials) without contacting the
/// storage: ok with the server down; a credentials file others can read, or a backup job naming
/// a destination gm.toml does not declare, is an error with a fix (exit 1). It never prints the
/// secret.
#[test]
fn config_check_resolves_each_destination_without_contacting_it() {
    let mut site = Site::new("s3-config-check");
    site.s3.kill();
    let check = || Gm::new(&["config", "check", "--home", site.h(), "--json"]);
    let (stdout, stderr) = check().expect(0);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let findings = report["findings"].as_array().unwrap_or_else(|| panic!("{report}"));
    let offsite = findings.iter().find(|f| f["subject"] == "destination offsite").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(offsite["level"], "ok", "{offsite}");
    assert!(offsite["message"].as_str().unwrap().contains(URL), "{offsite}");

    let file = site.home.join("s3-offsite.env");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (stdout, stderr) = check().expect(1);
    site.assert_no_secret(&[&stdout, &stderr]);
    let report = json(&stdout);
    let offsite =
        report["findings"].as_array().unwrap().iter().find(|f| f["subject"] == "destination offsite").cloned();
    let offsite = offsite.unwrap_or_else(|| panic!("{report}"));
    assert_eq!(offsite["level"], "error", "{offsite}");
    assert!(offsite["message"].as_str().unwrap().contains("s3-offsite.env") && offsite["fix"].is_string(), "{offsite}");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    site.append_toml(
        "\n[cron.jobs.backup]\nkind = \"backup\"\nschedule = \"0 */6 * * *\"\nbackup_dir = \"backups\"\n\
         destinations = [\"elsewhere\"]\nrecipients_file = \"backup-recipients.txt\"\n",
    );
    let (stdout, _) = check().expect(1);
    let report = json(&stdout);
    let errors: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["level"] == "error").collect();
    assert!(errors.len() == 1 && errors[0]["message"].as_str().unwrap().contains("elsewhere"), "{report}");
}
