//! Fault injection for `gm managed backup` and `gm managed restore` (issue 5, reliability): the real
//! binary is killed with SIGKILL at random moments, runs out of disk (RLIMIT_FSIZE stands in for a
//! full disk without root), meets a database another process keeps locked, and is handed damaged
//! or foreign backups. What must hold: no file carries a backup's final name unless it verifies;
//! the next run removes what a killed run left; a killed restore leaves the old or the new database,
//! whole; failures are refused with a message that names the file and a hint, leaving nothing.
//!
//! Random choices come from an xorshift generator seeded from the clock (or `GM_FAULT_SEED`); every
//! assertion prints the seed. `GM_FAULT_TRIALS` sets the kill -9 trials per test (default 50);
//! `scripts/fault-backup.sh [TRIALS]` runs many more.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{gm_bin, home_with_schema, identity, sandbox, ulimit_block_bytes, Gm, GmServer, TempDir};
use crate::signer::Operator;

/// xorshift64*: enough randomness to spread kill moments, reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_clock() -> (Rng, u64) {
        let seed = std::env::var("GM_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        }) | 1;
        (Rng(seed), seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn trials() -> usize {
    std::env::var("GM_FAULT_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(50)
}

/// Starts `gm ARGS` with a clean environment (as the harness does), output discarded.
fn spawn(args: &[&str]) -> Child {
    let mut cmd = Command::new(gm_bin());
    cmd.args(args).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn().unwrap()
}

/// Kills `child` with SIGKILL after `delay`; returns whether it had already finished successfully.
fn kill_after(mut child: Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap().success()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Scratch folders and temporary files a killed run may leave.
fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| {
            n.starts_with(".gm-backup-")
                || n.starts_with(".gm-restore-")
                || n.contains(".tmp")
                || n.contains("restore-tmp")
        })
        .collect()
}

fn verify_ok(archive: &Path, key: &Path, home: &Path) -> bool {
    Gm::verify(home, archive, key, &[]).output().status.success()
}

fn backup_args<'a>(home: &'a str, recipient: &'a str, output: &'a str) -> Vec<&'a str> {
    vec!["managed", "backup", "--home", home, "--recipient", recipient, "--output", output]
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

#[test]
fn killed_backups_never_leave_a_partial_backup_and_the_next_run_cleans_up() {
    let (mut rng, seed) = Rng::from_env_or_clock();
    let dir = TempDir::new("fault-backup");
    let home = home_with_schema(&dir);
    let (recipient, key) = identity(&dir);
    let h = home.to_str().unwrap();
    let out = dir.join("out");
    let probe = out.join("probe.age");
    let full = timed(|| {
        Gm::new(&backup_args(h, &recipient, probe.to_str().unwrap())).expect(0);
    });
    // Kill moments spread over a whole run, from process start to after the rename.
    let window_ms = (full.as_millis() as u64) * 13 / 10 + 5;
    let (mut left_something, mut completed) = (0, 0);
    for i in 0..trials() {
        let final_path = out.join(format!("trial-{i}.age"));
        let delay = rng.below(window_ms);
        let ctx = format!("seed {seed}, trial {i}, killed after {delay} ms of ~{} ms", full.as_millis());
        let finished = kill_after(spawn(&backup_args(h, &recipient, final_path.to_str().unwrap())), ms(delay));
        if finished {
            assert!(final_path.exists(), "{ctx}: exit 0 without the backup");
        }
        if final_path.exists() {
            assert!(verify_ok(&final_path, &key, &home), "{ctx}: {} exists but does not verify", final_path.display());
            completed += 1;
        }
        // Besides complete backups (each verified above), only leftovers of the killed run.
        let strays: Vec<String> =
            names(&out).into_iter().filter(|n| !n.ends_with(".age") && !leftovers(&out).contains(n)).collect();
        // A run killed between the two renames leaves a signature without its archive: inert.
        let strays: Vec<String> = strays.into_iter().filter(|n| !n.ends_with(".age.sig")).collect();
        assert!(strays.is_empty(), "{ctx}: {strays:?}");
        if !leftovers(&out).is_empty() {
            left_something += 1;
            // The next run into the same folder removes what the killed one left, and says so.
            let next = out.join(format!("next-{i}.age"));
            let (_, stderr) = Gm::new(&backup_args(h, &recipient, next.to_str().unwrap())).expect(0);
            assert_eq!(leftovers(&out), Vec::<String>::new(), "{ctx}: after the next run");
            assert!(stderr.contains("left behind by an interrupted gm run"), "{ctx}: {stderr}");
            assert!(!stderr.contains("AGE-SECRET-KEY"), "{ctx}: {stderr}");
            std::fs::remove_file(next).unwrap();
        }
    }
    eprintln!("seed {seed}: {} trials, {left_something} left leftovers, {completed} completed", trials());
    assert!(left_something > 0, "seed {seed}: no trial was killed mid-run (window {window_ms} ms)");
}

#[test]
fn killed_restores_leave_the_old_or_the_new_database_whole() {
    let (mut rng, seed) = Rng::from_env_or_clock();
    let dir = TempDir::new("fault-restore");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let db = home.join("na.db");
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    op.invite(server.addr, "{}");
    drop(server);
    let archive = dir.join("one-invite.age");
    Gm::new(&backup_args(h, &recipient, archive.to_str().unwrap())).expect(0);
    let (a, k) = (archive.to_str().unwrap(), key.to_str().unwrap());
    let restore = |pre: Option<&Path>| {
        let mut args = vec!["managed", "restore", "--home", h, "--backup", a, "--identity", k, "--yes"];
        if let Some(pre) = pre {
            args.extend(["--pre-restore-backup", pre.to_str().unwrap()]);
        }
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let full = timed(|| {
        Gm::new(&restore(None).iter().map(String::as_str).collect::<Vec<_>>()).expect(0);
    });
    // Trials also copy the old database first (--pre-restore-backup) or fold a crashed server's
    // WAL, which the measured run does not: a wider window lets enough of them complete.
    let window_ms = (full.as_millis() as u64) * 5 / 2 + 10;
    let mut state = invites(&db);
    assert_eq!(state, 1);
    let (mut stayed_old, mut became_new) = (0, 0);
    for i in 0..trials() {
        // The old database differs from the backup: one more invite, written either by a server
        // that then crashes (its last commits only in the WAL) or by a clean writer.
        if i % 3 == 0 {
            let server = GmServer::start(&home, &[]);
            op.invite(server.addr, "{}");
            server.kill_nine();
            let wal = std::fs::metadata(home.join("na.db-wal")).map(|m| m.len()).unwrap_or(0);
            assert!(wal > 0, "seed {seed}, trial {i}: the crashed server's last commits are in its WAL");
        } else {
            add_invite(&db, i);
        }
        let old = state + 1;
        let pre = (i % 2 == 1).then(|| dir.join(&format!("pre/before-{i}.db")));
        let delay = rng.below(window_ms);
        let ctx = format!("seed {seed}, trial {i}, killed after {delay} ms of ~{} ms", full.as_millis());
        let args = restore(pre.as_deref());
        let finished = kill_after(spawn(&args.iter().map(String::as_str).collect::<Vec<_>>()), ms(delay));
        let (integrity, now) = inspect(&db);
        assert_eq!(integrity, "ok", "{ctx}");
        assert!(now == old || now == 1, "{ctx}: {now} invites, expected the old {old} or the restored 1");
        if finished {
            assert_eq!(now, 1, "{ctx}: exit 0 but the old database is in place");
        }
        if let Some(pre) = pre.filter(|p| p.exists()) {
            assert_eq!(inspect(&pre), ("ok".to_string(), old), "{ctx}: the pre-restore copy");
        }
        if now == old {
            stayed_old += 1;
        } else {
            became_new += 1;
        }
        state = now;
    }
    // A restore after all those kills works and leaves nothing behind.
    Gm::new(&restore(Some(&dir.join("pre/final.db"))).iter().map(String::as_str).collect::<Vec<_>>()).expect(0);
    assert_eq!(invites(&db), 1);
    assert_eq!(leftovers(&home), Vec::<String>::new(), "seed {seed}");
    assert_eq!(leftovers(&dir.join("pre")), Vec::<String>::new(), "seed {seed}");
    eprintln!(
        "seed {seed}: {} trials, {stayed_old} kept the old database, {became_new} the new (window {window_ms} ms)",
        trials()
    );
    assert!(stayed_old > 0 && became_new > 0, "seed {seed}: the kills did not cover the restore");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn open(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn invites(db: &Path) -> i64 {
    open(db).query_row("SELECT COUNT(*) FROM invite_tokens", [], |r| r.get(0)).unwrap()
}

/// `PRAGMA integrity_check` and the invite count, as the next `gm serve` would see them.
fn inspect(db: &Path) -> (String, i64) {
    let c = open(db);
    let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let n = c.query_row("SELECT COUNT(*) FROM invite_tokens", [], |r| r.get(0)).unwrap_or(-1);
    (integrity, n)
}

fn add_invite(db: &Path, i: usize) {
    open(db)
        .execute(
            "INSERT INTO invite_tokens (token_id, assigned_roles_json, max_validity_hours, created_at, expires_at)
             VALUES (?1, '[]', 24, '2026-01-01T00:00:00+00:00', '2099-01-01T00:00:00+00:00')",
            [format!("fault-{i}")],
        )
        .unwrap();
}

#[test]
fn damaged_truncated_or_foreign_backups_are_refused_and_nothing_is_restored() {
    let (mut rng, seed) = Rng::from_env_or_clock();
    let dir = TempDir::new("fault-damaged");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let archive = dir.join("good.age");
    Gm::new(&backup_args(h, &recipient, archive.to_str().unwrap())).expect(0);
    let bytes = std::fs::read(&archive).unwrap();
    let db = home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    let wrong = TempDir::new("fault-wrong-id");
    let (_, wrong_key) = identity(&wrong);
    let mut cases: Vec<(String, Vec<u8>, &Path)> = Vec::new();
    // Bit flips in the header (first 200 bytes), in the payload and in the final bytes.
    for region in [(0, 200), (200, bytes.len() - 100), (bytes.len() - 100, bytes.len())] {
        for _ in 0..2 {
            let at = region.0 + rng.below((region.1 - region.0) as u64) as usize;
            let bit = rng.below(8) as u8;
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            cases.push((format!("bit {bit} of byte {at} flipped"), damaged, &key));
        }
    }
    for cut in [1, 17, bytes.len() / 2, bytes.len() - 1] {
        cases.push((format!("truncated to {cut} bytes"), bytes[..cut].to_vec(), &key));
    }
    cases.push(("encrypted to another identity".to_string(), bytes.clone(), &wrong_key));
    for (i, (what, content, id)) in cases.iter().enumerate() {
        let ctx = format!("seed {seed}: {what}");
        let file = dir.join(&format!("case-{i}.age"));
        std::fs::write(&file, content).unwrap();
        let (f, id) = (file.to_str().unwrap(), id.to_str().unwrap());
        let (stdout, _) = Gm::new(&["managed", "verify", f, "--identity", id]).env("GM_HOME", h).expect(1);
        assert!(stdout.starts_with(&format!("FAILED: {f}\n")) && stdout.contains("FAIL "), "{ctx}: {stdout}");
        let o = Gm::new(&["managed", "restore", "--home", h, "--backup", f, "--identity", id, "--yes"]).output();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{ctx}: {stderr}");
        assert!(stderr.starts_with("error: check ") && stderr.contains(" failed: "), "{ctx}: {stderr}");
        assert!(!stderr.contains("panicked"), "{ctx}: {stderr}");
        assert_eq!(std::fs::read(&db).unwrap(), before, "{ctx}: nothing restored");
        assert_eq!(leftovers(&home), Vec::<String>::new(), "{ctx}");
    }
    let (stdout, _) = Gm::verify(&home, &archive, &key, &[]).expect(0);
    assert!(stdout.starts_with("verified: "), "the undamaged backup still verifies: {stdout}");
}

#[test]
fn backup_on_a_full_disk_fails_clearly_and_leaves_nothing() {
    let dir = TempDir::new("fault-full");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, _) = identity(&dir);
    let out = dir.join("out");
    let probe = out.join("probe.age");
    let (stdout, _) =
        Gm::new(&[&backup_args(h, &recipient, probe.to_str().unwrap())[..], &["--json"]].concat()).expect(0);
    std::fs::remove_file(&probe).unwrap();
    std::fs::remove_file(gm::ops::backup_signature::sidecar_path(&probe)).unwrap();
    let snapshot_size: u64 = stdout
        .split("\"snapshot\":{")
        .nth(1)
        .unwrap()
        .split("\"size_bytes\":")
        .nth(1)
        .unwrap()
        .split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The limit must leave room for the database's 32 KiB `-shm`, which SQLite maps even to read.
    assert!(snapshot_size > 96 * 1024, "the sandbox database is large enough to fill: {snapshot_size}");
    let block = ulimit_block_bytes();
    // First the unencrypted snapshot cannot be written, then (stored, level 0, so the archive is
    // larger than the snapshot) the archive.
    for (step, limit_bytes) in [("snapshot", 64 * 1024), ("archive", snapshot_size + 1024)] {
        let final_path = out.join(format!("full-{step}.age"));
        let script = format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$GM\" managed backup --home \"$GM_HOME_DIR\" --recipient {recipient} --output \"$OUT\" --level 0",
            limit_bytes / block
        );
        let started = Instant::now();
        let o = Command::new("sh")
            .args(["-c", &script])
            .env_clear()
            .env("GM", gm_bin())
            .env("GM_HOME_DIR", h)
            .env("OUT", &final_path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{step}: {stderr}");
        let expected = format!("error: cannot write backup {} ({step} step): ", final_path.display());
        assert!(stderr.contains(&expected), "{step}: {stderr}");
        assert!(
            stderr.contains(&format!(
                // SQLite reports a write past the file-size limit as a disk I/O error, so the snapshot
                // step's hint also names a failing device.
                "\nhint: free space in {} (df -h) or raise its quota or file-size limit (ulimit -f), then run the backup again; no partial backup was left behind",
                out.display()
            )),
            "{step}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(names(&out), Vec::<String>::new(), "{step}: no final file, no .tmp, no scratch folder");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}

#[test]
fn backup_waits_for_an_exclusive_lock_within_its_timeout_then_reports_busy() {
    let dir = TempDir::new("fault-busy");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let db = home.join("na.db");
    let out = dir.join("out");
    // In WAL mode an ordinary write transaction never blocks the online backup (readers see the
    // last commit); a connection in `locking_mode = EXCLUSIVE` (a sqlite3 shell, a maintenance
    // job) does, for as long as it stays open.
    let locked_db = db.clone();
    let hold = move |release: std::sync::mpsc::Receiver<()>, locked: std::sync::mpsc::SyncSender<()>| {
        let c = open(&locked_db);
        c.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; DELETE FROM nonces;").unwrap();
        locked.send(()).unwrap();
        let _ = release.recv_timeout(Duration::from_secs(60));
        c.execute_batch("COMMIT").unwrap();
    };
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel(1);
    let (locked_tx, locked_rx) = std::sync::mpsc::sync_channel(1);
    let holder = std::thread::spawn({
        let hold = hold.clone();
        move || hold(release_rx, locked_tx)
    });
    locked_rx.recv().unwrap();
    let busy = out.join("busy.age");
    let started = Instant::now();
    let (_, stderr) =
        Gm::new(&[&backup_args(h, &recipient, busy.to_str().unwrap())[..], &["--busy-timeout", "1"]].concat())
            .expect(2);
    let took = started.elapsed();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(10), "waited {took:?}");
    assert!(
        stderr.starts_with(&format!(
            "error: database {} is busy: another process kept it locked for the whole 1 s busy timeout\nhint: a process holds an exclusive lock on the database",
            db.display()
        )) && stderr.contains("or raise --busy-timeout\n"),
        "{stderr}"
    );
    assert_eq!(names(&out), Vec::<String>::new(), "no backup, no leftovers");
    // A lock released within the timeout only delays the backup.
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel(1);
    let (locked_tx, locked_rx) = std::sync::mpsc::sync_channel(1);
    let holder = std::thread::spawn(move || hold(release_rx, locked_tx));
    locked_rx.recv().unwrap();
    let waited = out.join("waited.age");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        release_tx.send(()).unwrap();
    });
    let took = timed(|| {
        Gm::new(&[&backup_args(h, &recipient, waited.to_str().unwrap())[..], &["--busy-timeout", "20"]].concat())
            .expect(0);
    });
    releaser.join().unwrap();
    holder.join().unwrap();
    assert!(took >= Duration::from_millis(1000), "the backup waited for the lock: {took:?}");
    assert!(verify_ok(&waited, &key, &home));
    let (_, stderr) = Gm::new(&[&backup_args(h, &recipient, "x.age")[..], &["--busy-timeout", "100000"]].concat())
        .cwd(dir.path())
        .expect(2);
    assert!(stderr.starts_with("error: --busy-timeout 100000 is longer than a day\n"), "{stderr}");
}

#[test]
fn restore_waits_for_an_exclusive_lock_within_its_timeout_and_changes_nothing() {
    let dir = TempDir::new("fault-restore-busy");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let db = home.join("na.db");
    let archive = dir.join("b.tar.gz.age");
    Gm::new(&backup_args(h, &recipient, archive.to_str().unwrap())).expect(0);
    add_invite(&db, 1);
    let before = inspect(&db);
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let (locked_tx, locked_rx) = std::sync::mpsc::sync_channel(1);
    let locked_db = db.clone();
    let holder = std::thread::spawn(move || {
        let c = open(&locked_db);
        c.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; DELETE FROM nonces;").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(60));
        c.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let (_, stderr) = Gm::restore_with(&home, &archive, &key, &["--busy-timeout", "1"]).expect(2);
    let took = started.elapsed();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(took < Duration::from_secs(15), "gave up after its 1 s timeout, not the default 30 s: {took:?}");
    assert!(stderr.contains("lock") || stderr.contains("busy"), "{stderr}");
    assert_eq!(inspect(&db), before, "the database is unchanged");
}

// Issue 8 item 3: a restore whose disk fills while it unpacks must say the disk is full (exit 2,
// with a hint), not fail the "decrypt" check as if the backup were damaged (exit 1).
#[test]
fn restore_on_a_full_disk_is_an_io_error_not_a_damaged_backup() {
    let dir = TempDir::new("fault-restore-full");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let archive = dir.join("b.age");
    Gm::new(&backup_args(h, &recipient, archive.to_str().unwrap())).expect(0);
    let db = home.join("na.db");
    add_invite(&db, 0);
    let before = inspect(&db);
    let script = format!(
        "trap '' XFSZ; ulimit -f {}; exec \"$GM\" managed restore --home \"$GM_HOME_DIR\" --backup \"$ARCHIVE\" --identity \"$KEY\" --yes",
        64 * 1024 / ulimit_block_bytes()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("GM", gm_bin())
        .env("GM_HOME_DIR", h)
        .env("ARCHIVE", &archive)
        .env("KEY", &key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: cannot write ") && stderr.contains("File too large"), "{stderr}");
    assert!(!stderr.contains("check decrypt failed") && !stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("\nhint: free space in ")
            && stderr
                .ends_with(" (df -h) or raise its quota or file-size limit (ulimit -f), then run the command again\n"),
        "{stderr}"
    );
    assert_eq!(inspect(&db), before, "the old database is untouched");
    assert_eq!(leftovers(&home), Vec::<String>::new());
    // With room again the same restore succeeds.
    Gm::restore(&home, &archive, &key).expect(0);
    assert_eq!(inspect(&db).0, "ok");
}
