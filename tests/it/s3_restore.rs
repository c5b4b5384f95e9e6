//! Off-host backups (issue 17), the reading side, against a real S3 server (s3s-fs): verify,
//! restore, restore-drill (`--backup`, `--latest`) and prune read `s3://` objects as they read files
//! (same checks, reports and exit codes; a tampered or unsigned object fails; `--latest` and prune
//! trust only objects whose signature checks out, directly under their prefix); the scheduled jobs
//! do the same from gm.toml; incident bundles and readiness carry the S3 runs but never the secret.
//! The backup side is in `s3_backup.rs`; the shared `Site` in `s3_site.rs`.

use std::path::Path;

use serde_json::Value;

use crate::harness::{home_with_schema, Gm, TempDir};
use crate::s3_site::{
    add_invite, archives, copy, entries, entries_all, file_name, invites, json, ledger_rows, next_second, ArgvWatch,
    LedgerRow, Site, BUCKET, URL,
};

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
