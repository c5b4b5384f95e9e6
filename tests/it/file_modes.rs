//! Private files are created 0600 (issue 8 item 4, STYLE.md "Files on disk"): every file gm writes
//! that holds a secret or customer data (keys, backup archives and their manifests, audit exports and
//! their manifests, incident bundles, readiness reports, the readiness profile, the probe state) is
//! owner-only, and so are the NA database, its `-wal`/`-shm`, the ops ledger and every database copy
//! (F9). Every command runs under `umask 022`, a login shell's default, so the modes are gm's own
//! and not the unit's `UMask=0077`. Public files (`.pub` keys, the signed genesis) may be 0644; they
//! must not be group- or world-writable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::{sandbox, Gm, GmServer, TempDir};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn keys_backups_exports_bundles_reports_profile_and_probe_state_are_created_0600() {
    let dir = TempDir::new("modes");
    let home = dir.join("home");
    Gm::umask_022(&["quickstart", "--home", home.to_str().unwrap(), "--no-serve"]).expect(0);
    let h = home.to_str().unwrap();
    let mut private: Vec<PathBuf> = ["keys/na.key", "offline/root.key", "offline/operator.key", "offline/backup.key"]
        .iter()
        .map(|k| home.join(k))
        .collect();
    let mut public: Vec<PathBuf> =
        ["keys/na.pub", "keys/backup-signing.pub", "offline/root.pub", "offline/operator.pub", "genesis.signed.json"]
            .iter()
            .map(|k| home.join(k))
            .collect();

    for kind in ["root", "network-authority", "operator"] {
        let base = dir.join(&format!("keygen/{kind}"));
        std::fs::create_dir_all(base.parent().unwrap()).unwrap();
        Gm::umask_022(&["keygen", kind, "--output", base.to_str().unwrap(), "--key-id", "k-1"]).expect(0);
        private.push(base.with_extension("key"));
        public.push(base.with_extension("pub"));
    }

    let recipient = std::fs::read_to_string(home.join("backup-recipients.txt")).unwrap();
    let recipient = recipient.lines().find(|l| l.starts_with("age1")).unwrap().trim().to_string();
    let server = GmServer::start_in_shell(&home, &["--no-scheduler"], &[], "umask 022");
    let url = format!("http://{}", server.addr);
    let backups = dir.join("backups");
    Gm::backup(&home, &recipient, &backups).under_umask_022().expect(0);
    let backup_files = files_under(&backups);
    assert!(backup_files.iter().any(|f| f.to_string_lossy().ends_with(".age")), "{backup_files:?}");
    private.extend(backup_files);

    let exports = dir.join("exports");
    Gm::umask_022(&["managed", "audit-export", "--home", h, "--output", exports.join("audit.jsonl").to_str().unwrap()])
        .expect(0);
    let export_files = files_under(&exports);
    assert_eq!(export_files.len(), 2, "the export and its manifest: {export_files:?}");
    private.extend(export_files);

    let bundle = dir.join("incidents/inc.tar.gz.age");
    Gm::umask_022(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2020-01-01T00:00:00Z",
        "--output",
        bundle.to_str().unwrap(),
        "--recipient",
        &recipient,
        "--na",
        &url,
    ])
    .expect(0);
    private.push(bundle);

    Gm::umask_022(&["profile", "init", "--home", h]).expect(0);
    private.push(home.join("profile.toml"));
    let report = dir.join("reports/readiness.json");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let out = Gm::umask_022(&[
        "readiness",
        "--home",
        h,
        "--na",
        &url,
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
    ])
    .output();
    assert!(report.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    private.push(report);

    let state = dir.join("probe/state.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let out = Gm::umask_022(&["probe", "--na", &url, "--state-file", state.to_str().unwrap()]).output();
    assert!(state.exists(), "{}", String::from_utf8_lossy(&out.stdout));
    private.push(state);

    let wrong: Vec<String> = private
        .iter()
        .filter(|p| mode(p) != 0o600)
        .map(|p| format!("{:o} {}", mode(p), p.display()))
        .chain(public.iter().filter(|p| mode(p) & 0o022 != 0).map(|p| format!("{:o} {}", mode(p), p.display())))
        .collect();
    assert!(wrong.is_empty(), "files with the wrong mode:\n{}", wrong.join("\n"));
    drop(server);
    // Every other file gm created under the loose umask is owner-only too, except public material
    // (recipients, operator public keys), the config (paths and settings, no secret), the empty
    // lock file, and the server log this test's harness created.
    let readable: Vec<PathBuf> =
        ["backup-recipients.txt", "gm.toml", "operators.json", "na.db.gm-lock"].iter().map(|f| home.join(f)).collect();
    let loose: Vec<String> = files_under(dir.path())
        .into_iter()
        .filter(|p| !public.contains(p) && !readable.contains(p) && !p.to_string_lossy().contains("/serve-"))
        .filter(|p| mode(p) != 0o600)
        .map(|p| format!("{:o} {}", mode(&p), p.display()))
        .collect();
    assert!(loose.is_empty(), "files readable by others:\n{}", loose.join("\n"));
    assert!(readable.iter().all(|p| mode(p) & 0o022 == 0), "no config file is writable by others");
}

/// The files in `paths` that exist and are not 0600, as `mode path` lines.
fn not_private(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().filter(|p| p.exists() && mode(p) != 0o600).map(|p| format!("{:o} {}", mode(p), p.display())).collect()
}

fn with_sidecars(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"].iter().map(|s| PathBuf::from(format!("{}{s}", db.display()))).collect()
}

// F9: under umask 022, na.db (+ -wal/-shm) and the plaintext pre-restore copy were created 0644 and
// held unredeemed tokens; the unit's UMask=0077 only covers systemd runs.
#[test]
fn under_umask_022_the_database_sidecars_ledger_and_copies_are_created_0600() {
    let dir = TempDir::new("modes-umask");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let db = home.join("na.db");
    let _ = std::fs::remove_file(&db);
    let server = GmServer::start_in_shell(&home, &["--no-scheduler"], &[], "umask 022");
    let op = crate::signer::Operator::sandbox(&home);
    op.invite(server.addr, "{}");
    let live = with_sidecars(&db);
    assert!(live[1].exists() && live[2].exists(), "the server holds a -wal and a -shm");
    assert_eq!(not_private(&live), Vec::<String>::new(), "while serving");

    let (recipient, key) = crate::harness::identity(&dir);
    let archive = dir.join("b.tar.gz.age");
    Gm::umask_022(&[
        "managed",
        "backup",
        "--home",
        h,
        "--recipient",
        &recipient,
        "--output",
        archive.to_str().unwrap(),
    ])
    .expect(0);
    let export = dir.join("audit.jsonl");
    Gm::umask_022(&["managed", "audit-export", "--home", h, "--output", export.to_str().unwrap()]).expect(0);
    drop(server);

    let pre = dir.join("pre/before.db");
    Gm::restore_with(&home, &archive, &key, &["--pre-restore-backup", pre.to_str().unwrap()])
        .under_umask_022()
        .expect(0);
    assert!(pre.exists());
    let mut private = with_sidecars(&db);
    private.extend(with_sidecars(&home.join("gm-ops.db")));
    private.extend(with_sidecars(&pre));
    private.extend([archive, export.clone(), gm::ops::audit_export::manifest_path(&export)]);
    private.extend(files_under(&home).into_iter().filter(|p| p.to_string_lossy().contains(".pre-restore-")));
    assert_eq!(not_private(&private), Vec::<String>::new());

    // A database an earlier version left 0644 is made owner-only when it is next served.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = GmServer::start_in_shell(&home, &["--no-scheduler"], &[], "umask 022");
    assert_eq!(not_private(&with_sidecars(&db)), Vec::<String>::new(), "tightened at start");
    drop(server);
}
