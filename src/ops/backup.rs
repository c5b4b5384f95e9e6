//! `gm managed backup`: a consistent snapshot of the live database through SQLite's online backup
//! API (the server keeps serving and writing), checked with `PRAGMA integrity_check`, described by
//! a manifest, packed with the signed genesis and the operator public keys (never a private key),
//! and encrypted with age. The archive is written under a temporary name in the target folder,
//! fsynced and renamed, mode 0600, so no file carries the final name unless it is complete.
//!
//! A run killed with SIGKILL leaves its scratch folder and temporary file behind; the next run into
//! the same folder removes them first ([`super::leftovers`]). A database another process keeps
//! locked fails the run with [`OpsError::Busy`] after `busy_timeout`; a failed write (full disk,
//! file-size limit) fails it with [`OpsError::Write`], leaving no partial output.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::crypto::digest::{hex, sha256_hex};
use crate::files::atomic::sync_parent;
use crate::files::private::create_new_private;
use crate::json::parse_str;
use crate::model::genesis::Genesis;
use crate::model::timestamp::isoformat_utc;
use crate::model::SignedObject;
use crate::store::{snapshot, OpenMode, Store, StoreError};

use super::archive::{ArchiveWriter, Hashing, Key};
use super::backup_name::{free_backup_name, FOLDER_LOCK};
use super::backup_remote::{self, free_remote_name, RemoteCopy, RemoteTarget, Sinks};
use super::backup_signature::{sidecar_path, BackupSignature, BackupSigner};
use super::error::{io, OpsError};
use super::leftovers::{self, remove_with_sidecars, tmp_path};
use super::manifest::Manifest;
use super::progress::{Progress, Silent};
use super::s3::upload;
use super::snapshot_stream::GrowingFile;

/// Where the archive goes.
pub(crate) enum Target {
    /// Exactly this file.
    File(PathBuf),
    /// This folder, named `gm-<network>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz.age`.
    Dir(PathBuf),
}

/// What to back up and how.
pub(crate) struct BackupOptions {
    /// The NA database.
    pub db_path: PathBuf,
    /// The signed genesis.
    pub genesis_file: PathBuf,
    /// The operator public keys file, when there is one.
    pub operators_file: Option<PathBuf>,
    /// Encryption.
    pub key: Key,
    /// The local destination, if any.
    pub target: Option<Target>,
    /// The S3 destinations (none, one or several), written in the same pass as the local file.
    pub remotes: Vec<RemoteTarget>,
    /// gzip level (0–9). Defaults to 1 in the CLI.
    pub level: u32,
    /// How long to wait for another process's lock on the database. Defaults to 30 s in the CLI.
    pub busy_timeout: Duration,
    /// The backup-signing key; `None` writes an unsigned backup (only with `--allow-unsigned`).
    pub signer: Option<BackupSigner>,
}

/// What a backup produced.
#[derive(Debug, Clone)]
pub(crate) struct BackupReport {
    /// The local archive, when there is one.
    pub path: Option<PathBuf>,
    /// The archive's file (object) name.
    pub name: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// Its manifest.
    pub manifest: Manifest,
    /// Milliseconds taken.
    pub duration_ms: u128,
    /// The local signature file `<archive>.sig`, when the backup was signed.
    pub signature: Option<PathBuf>,
    /// Whether the backup was signed (locally and on every destination).
    pub signed: bool,
    /// Each S3 destination's copy.
    pub copies: Vec<RemoteCopy>,
}

impl BackupReport {
    /// Where the backup is: the local file, else the first stored copy's URL.
    pub(crate) fn location(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => self
                .copies
                .iter()
                .find(|c| c.result.is_ok())
                .or(self.copies.first())
                .map_or_else(|| self.name.clone(), |c| c.url.to_string()),
        }
    }
}

/// A private scratch folder removed on drop. While it exists the process holds an OS lock on it,
/// which tells [`leftovers::remove_stale`] in another process that it is in use.
pub(crate) struct Scratch {
    path: PathBuf,
    _lock: Option<File>,
}

impl Scratch {
    /// Creates a mode-0700 folder `prefix-<pid>-<nanos>` inside `parent`.
    /// Stale folders of the same prefix that killed runs left in `parent` are removed first.
    pub fn new(parent: &Path, prefix: &str) -> Result<Scratch, OpsError> {
        remove_leftovers(parent, prefix);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let path = parent.join(format!("{prefix}-{}-{nanos}", std::process::id()));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&path).map_err(io("create scratch folder", &path))?;
        // Best effort: without the lock, the pid in the name still marks the folder as in use.
        let lock = File::open(&path).ok().filter(|f| f.try_lock().is_ok());
        Ok(Scratch { path, _lock: lock })
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Reads and checks the genesis: `(bytes, genesis)`.
pub(crate) fn load_genesis(path: &Path) -> Result<(Vec<u8>, Genesis), OpsError> {
    let bytes = std::fs::read(path).map_err(io("read genesis", path))?;
    let value = parse_str(&String::from_utf8_lossy(&bytes))
        .map_err(|e| OpsError::Archive { problem: format!("genesis {}: {e}", path.display()) })?;
    let genesis =
        Genesis::from_value(&value).map_err(|e| OpsError::Archive { problem: format!("{}: {e}", path.display()) })?;
    Ok((bytes, genesis))
}

/// Takes an encrypted backup. The snapshot is streamed into the archive while two threads check
/// it (`integrity_check` and the row counts) and hash it; the manifest, which needs both, is
/// appended after the snapshot, and the archive is hashed as it is written. So a 1 GiB database
/// is read once for the archive instead of four times in a row (BENCHMARKS.md, "Backups").
///
/// The same bytes go, in the same pass, to the local file and to every S3 destination (a
/// multipart upload each, [`super::backup_remote`]). A destination that fails is reported in
/// [`BackupReport::copies`] and the rest go on; the run fails outright only when the local file
/// fails, or when there is no local file and every destination failed.
pub(crate) fn backup(
    opts: &BackupOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<BackupReport, OpsError> {
    let started = Instant::now();
    let (genesis_bytes, genesis) = load_genesis(&opts.genesis_file)?;
    let (final_path, _folder_lock) = match &opts.target {
        Some(Target::File(p)) => {
            std::fs::create_dir_all(parent_folder(p)).map_err(io("create folder", &parent_folder(p)))?;
            (Some(p.clone()), None)
        }
        Some(Target::Dir(d)) => {
            std::fs::create_dir_all(d).map_err(io("create folder", d))?;
            let lock = lock_folder(d)?;
            let name = free_backup_name(d, &genesis.network_name, now).ok_or_else(|| OpsError::Refused {
                reason: format!("{} already holds a thousand backups taken within this second", d.display()),
            })?;
            (Some(name), Some(lock))
        }
        None if opts.remotes.is_empty() => {
            return Err(OpsError::Refused { reason: "a backup needs a local folder or file, or a destination".into() })
        }
        None => (None, None),
    };
    // Each bucket is checked once, first: a refused or unreachable one fails its copy at once.
    let checked: Vec<_> = opts.remotes.iter().map(|t| t.remote.check_bucket()).collect();
    let name = match &final_path {
        Some(p) => p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        None => free_remote_name(&opts.remotes, &checked, &genesis.network_name, now),
    };
    if let Some(p) = &final_path {
        refuse_existing(p)?;
    }
    // The scratch snapshot sits beside the local archive, else beside the database (never in a
    // temporary folder that may be memory-backed).
    let folder = match &final_path {
        Some(p) => parent_folder(p),
        None => parent_folder(&opts.db_path),
    };
    let shown = final_path.clone().unwrap_or_else(|| PathBuf::from(&name));
    remove_leftovers(&folder, ".gm-backup");
    let journal = super::ledger::path_beside(&opts.db_path).with_file_name(upload::JOURNAL_FOLDER);
    let slots = backup_remote::open(&opts.remotes, checked, &name, &journal, now);
    let mut sinks = Sinks { local: None, slots };
    if let (None, Some(e)) = (&final_path, sinks.all_failed()) {
        return Err(OpsError::from(e));
    }
    let scratch = Scratch::new(&folder, ".gm-backup")?;
    let snap = scratch.path().join("na.db");
    let store =
        Store::open_with_busy_timeout(&opts.db_path, OpenMode::ReadOnly, &isoformat_utc(now), opts.busy_timeout)
            .map_err(|e| busy_or(e, &opts.db_path, opts.busy_timeout))?;
    let manifest_path = scratch.path().join("manifest.json");
    let tmp = final_path.as_deref().map(tmp_path);
    // A second handle on the local file: the snapshot's part of the archive is made durable while
    // `integrity_check` runs, so the final fsync only has the tail left.
    let mut early_sync = None;
    if let Some(tmp) = &tmp {
        let _ = std::fs::remove_file(tmp);
        let out =
            create_new_private(tmp).map_err(io("create", tmp)).map_err(|e| write_failure(e, &shown, "archive"))?;
        // Best effort: without the lock, the pid in the name still marks the file as in use.
        let _ = out.try_lock();
        early_sync = out.try_clone().ok();
        sinks.local = Some(out);
    }
    let (growing, snap_file) = GrowingFile::create(&snap).map_err(|e| write_failure(e, &shown, "snapshot"))?;
    let snap_meta = snap_file.metadata().map_err(io("read", &snap))?;
    let mut archive = match ArchiveWriter::new(Hashing::new(sinks), &opts.key, opts.level) {
        Ok(a) => a,
        Err(e) => {
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(write_failure(e, &shown, "archive"));
        }
    };
    let archived_bytes = AtomicU64::new(0);
    let written = std::thread::scope(|scope| -> Result<(Manifest, String, Sinks, String, u64), OpsError> {
        // The snapshot is hashed and archived by two threads that follow the file as it is
        // written; the main thread copies the pages, then checks the finished file.
        let hashed = std::thread::Builder::new()
            .name("backup-hash".into())
            .spawn_scoped(scope, || reader_sha256(&mut growing.follow()?, &snap))
            .map_err(io("start a thread for", &snap))?;
        let archived = std::thread::Builder::new()
            .name("backup-archive".into())
            .spawn_scoped(scope, || -> Result<_, OpsError> {
                let size = growing.total().ok_or_else(|| OpsError::Archive { problem: "no snapshot".into() })?;
                let reader = Tally { inner: growing.follow()?, done: &archived_bytes };
                archive.append_reader("na.db", &snap_meta, size, reader, &snap)?;
                if let Some(file) = &early_sync {
                    file.sync_data().map_err(io("fsync", &snap))?;
                }
                Ok(archive)
            })
            .map_err(io("start a thread for", &snap))?;
        let copied = store
            .read(|c| Ok(growing.write_from(c, snap_file, progress)))
            .map_err(OpsError::Store)
            .and_then(|r| r)
            .map_err(|e| match e {
                OpsError::Store(s) => busy_or(s, &opts.db_path, opts.busy_timeout),
                other => other,
            })
            .map_err(|e| write_failure(e, &shown, "snapshot"))
            // Also when the page copy never started: the two followers must not wait forever.
            .inspect_err(|_| growing.abandon());
        let checked = copied.and_then(|snap_bytes| -> Result<_, OpsError> {
            // The rows are counted on a second connection while integrity_check runs.
            let counted = std::thread::Builder::new()
                .name("backup-count".into())
                .spawn_scoped(scope, || -> Result<_, OpsError> {
                    Ok(Manifest::count(&snapshot::open_immutable_mapped(&snap)?, now)?)
                })
                .map_err(io("start a thread for", &snap))?;
            let conn = snapshot::open_immutable_mapped(&snap)?;
            let checked = snapshot::integrity_check(&conn);
            let counts = counted.join().unwrap_or_else(|_| Err(panicked()));
            if let Err(problem) = checked? {
                return Err(OpsError::Check { check: "integrity_check".into(), problem });
            }
            Ok((snap_bytes, counts?))
        });
        // The archive thread usually finishes during the check; its progress shows meanwhile.
        let total = growing.total().unwrap_or(0);
        while checked.is_ok() && !archived.is_finished() {
            progress.update("archive", archived_bytes.load(Ordering::Relaxed), total);
            std::thread::sleep(Duration::from_millis(100));
        }
        progress.update("archive", archived_bytes.load(Ordering::Relaxed), total);
        let snapshot_sha256 = hashed.join().unwrap_or_else(|_| Err(panicked()));
        let archive = archived.join().unwrap_or_else(|_| Err(panicked()));
        let (snap_bytes, (schema_version, row_counts, crl_sequence, connectome)) = checked?;
        let snapshot_sha256 = snapshot_sha256?;
        let mut archive = archive?;
        let manifest = Manifest {
            created_at: isoformat_utc(now),
            network_name: genesis.network_name.clone(),
            genesis_sha256: sha256_hex(&genesis_bytes),
            na_public_key: genesis.network_authority.public_key.clone(),
            schema_version,
            snapshot_sha256,
            snapshot_size: snap_bytes,
            row_counts,
            crl_sequence,
            connectome,
        };
        let mut text = crate::crypto::canonical::to_pretty_string(&manifest.to_value());
        text.push('\n');
        let manifest_sha256 = sha256_hex(text.as_bytes());
        std::fs::write(&manifest_path, text).map_err(io("write", &manifest_path))?;
        archive.append("manifest.json", &manifest_path, &Silent)?;
        archive.append("genesis.signed.json", &opts.genesis_file, &Silent)?;
        if let Some(ops) = opts.operators_file.as_deref().filter(|p| p.exists()) {
            archive.append("operators.json", ops, &Silent)?;
        }
        let (mut sinks, sha256, size) = archive.finish()?.finish();
        if let (Some(file), Some(tmp)) = (&sinks.local, &tmp) {
            file.sync_all().map_err(io("fsync", tmp))?;
        }
        sinks.finish_parts();
        Ok((manifest, manifest_sha256, sinks, sha256, size))
    });
    drop(store);
    let (manifest, manifest_sha256, mut sinks, sha256, size) = match written {
        Ok(w) => w,
        Err(e) => {
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(write_failure(e, &shown, "archive"));
        }
    };
    drop(sinks.local.take());
    if let (None, Some(e)) = (&final_path, sinks.all_failed()) {
        return Err(OpsError::from(e));
    }
    // The signature goes first: a run killed between the two renames leaves a signature without
    // an archive (ignored by everything) rather than an archive that looks unsigned. Likewise each
    // destination's `.sig` object is stored before its upload completes.
    let signature_text = opts.signer.as_ref().map(|signer| {
        let facts = BackupSignature {
            archive: name.clone(),
            archive_sha256: sha256.clone(),
            archive_size: size,
            created_at: manifest.created_at.clone(),
            network_name: manifest.network_name.clone(),
            manifest_sha256,
            key_id: String::new(),
            public_key: String::new(),
            signature: String::new(),
        };
        BackupSignature::sign(facts, signer).to_text()
    });
    let mut signature = None;
    if let (Some(text), Some(final_path), Some(tmp)) = (&signature_text, &final_path, &tmp) {
        let sig_path = sidecar_path(final_path);
        if let Err(e) = write_signature(&sig_path, text.as_bytes()) {
            let _ = std::fs::remove_file(tmp);
            return Err(write_failure(e, final_path, "signature"));
        }
        signature = Some(sig_path);
    }
    if let Some(text) = &signature_text {
        sinks.put_signatures(text, now);
    }
    if let (Some(final_path), Some(tmp)) = (&final_path, &tmp) {
        if let Err(e) = place(tmp, final_path) {
            if let Some(sig) = &signature {
                let _ = std::fs::remove_file(sig);
            }
            return Err(e);
        }
    }
    let copies = sinks.complete(size);
    drop(scratch);
    if final_path.is_none() {
        if let Some(e) = copies
            .iter()
            .all(|c| c.result.is_err())
            .then(|| copies.iter().find_map(|c| c.result.clone().err()))
            .flatten()
        {
            return Err(OpsError::from(e));
        }
    }
    Ok(BackupReport {
        sha256,
        path: final_path,
        name,
        size,
        manifest,
        duration_ms: started.elapsed().as_millis(),
        signature,
        signed: signature_text.is_some(),
        copies,
    })
}

/// Writes the signature file like the archive: a pid-marked temporary file (a leftover the next
/// run removes), fsync, rename (never over an existing file), fsync the folder.
fn write_signature(path: &Path, bytes: &[u8]) -> Result<(), OpsError> {
    use std::io::Write;
    refuse_existing(path)?;
    let tmp = tmp_path(path);
    let _ = std::fs::remove_file(&tmp);
    let written = create_new_private(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(io("write", &tmp))
        .and_then(|()| place(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn panicked() -> OpsError {
    OpsError::Archive { problem: "a backup thread panicked".into() }
}

/// Takes [`FOLDER_LOCK`] in `folder` (waiting for a backup already writing there).
fn lock_folder(folder: &Path) -> Result<File, OpsError> {
    let path = folder.join(FOLDER_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        // A writer to the backup storage could plant a symlink here; the lock never follows one.
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(io("create lock file", &path))?;
    file.lock().map_err(io("lock", &path))?;
    Ok(file)
}

fn refuse_existing(final_path: &Path) -> Result<(), OpsError> {
    if final_path.exists() {
        return Err(OpsError::Refused {
            reason: format!("refusing to overwrite existing backup {}", final_path.display()),
        });
    }
    Ok(())
}

fn parent_folder(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Removes what killed runs left in `folder` and says so in the log (paths only, never content).
pub(super) fn remove_leftovers(folder: &Path, scratch_prefix: &str) {
    for path in leftovers::remove_stale(folder, scratch_prefix) {
        log::warn!(target: "gm::ops", "removed {}, left behind by an interrupted gm run", path.display());
    }
}

/// A lock another process held for the whole timeout becomes [`OpsError::Busy`].
fn busy_or(e: StoreError, db: &Path, waited: Duration) -> OpsError {
    if e.is_busy() {
        OpsError::Busy { db: db.to_path_buf(), waited }
    } else {
        OpsError::Store(e)
    }
}

/// A failure to write the output (not a refusal, a busy source or a failed check) becomes
/// [`OpsError::Write`], which names the backup and the step.
fn write_failure(e: OpsError, target: &Path, step: &'static str) -> OpsError {
    let is_write = match &e {
        OpsError::Io { .. } | OpsError::Archive { .. } | OpsError::Crypto { .. } => true,
        OpsError::Store(s) => s.is_write_failure(),
        _ => false,
    };
    if is_write {
        OpsError::Write { target: target.to_path_buf(), step, source: Box::new(e) }
    } else {
        e
    }
}

/// Renames the finished `tmp` archive to `final_path` (refusing to replace a file that appeared
/// meanwhile) and syncs the folder; the temporary file is removed on every error.
fn place(tmp: &Path, final_path: &Path) -> Result<(), OpsError> {
    if let Err(e) = refuse_existing(final_path) {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    std::fs::rename(tmp, final_path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        write_failure(
            OpsError::Io { action: "rename", path: final_path.to_path_buf(), source: e },
            final_path,
            "rename",
        )
    })?;
    sync_parent(final_path);
    Ok(())
}

/// Upstream-compatible plain backup: an online-backup copy of the database at `output` (no
/// encryption, no manifest), written atomically.
pub(crate) fn plain_backup(
    db_path: &Path,
    output: &Path,
    now: DateTime<Utc>,
    busy_timeout: Duration,
) -> Result<(), OpsError> {
    let folder = parent_folder(output);
    std::fs::create_dir_all(&folder).map_err(io("create folder", &folder))?;
    remove_leftovers(&folder, ".gm-backup");
    let store = Store::open_with_busy_timeout(db_path, OpenMode::ReadOnly, &isoformat_utc(now), busy_timeout)
        .map_err(|e| busy_or(e, db_path, busy_timeout))?;
    store
        .read(|c| Ok(snapshot_file(c, output, busy_timeout)))
        .map_err(OpsError::from)?
        .map_err(|e| match e {
            OpsError::Store(s) => busy_or(s, db_path, busy_timeout),
            other => other,
        })
        .map_err(|e| write_failure(e, output, "snapshot"))
}

/// Writes an online-backup copy of `src` to `output`: `<output>.gm-backup-<pid>.tmp`, fsync, rename,
/// fsync the folder. The temporary file and its SQLite side files are removed on every error.
pub(crate) fn snapshot_file(
    src: &crate::store::Connection,
    output: &Path,
    busy_timeout: Duration,
) -> Result<(), OpsError> {
    let tmp = tmp_path(output);
    remove_with_sidecars(&tmp);
    let result = snapshot::online_backup(src, &tmp, busy_timeout, |_, _| {}).map_err(OpsError::from).and_then(|()| {
        File::options().write(true).open(&tmp).and_then(|f| f.sync_all()).map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, output).map_err(io("rename", output))
    });
    if result.is_err() {
        remove_with_sidecars(&tmp);
    }
    result?;
    sync_parent(output);
    Ok(())
}

/// A reader that publishes how many bytes it has read (the archive thread's progress).
struct Tally<'a, R> {
    inner: R,
    done: &'a AtomicU64,
}

impl<R: std::io::Read> std::io::Read for Tally<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// SHA-256 of a file, streamed.
pub(crate) fn file_sha256(path: &Path) -> Result<String, OpsError> {
    let mut file = File::open(path).map_err(io("read", path))?;
    reader_sha256(&mut file, path)
}

/// SHA-256 of what `file` reads from its current position to the end (`path` names it in errors).
pub(crate) fn reader_sha256(file: &mut impl std::io::Read, path: &Path) -> Result<String, OpsError> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(file, &mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}
