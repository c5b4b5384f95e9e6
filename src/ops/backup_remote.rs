//! The off-host half of `gm managed backup`: the S3 destinations one run writes to, each copy's
//! steps (check the bucket, refuse an existing name, start a multipart upload, stream the archive
//! into it beside the local file, upload the signature, complete, confirm size and lock), and the
//! [`Sinks`] writer that feeds the local file and every upload at once.
//!
//! One destination failing never stops the others or the local copy: its upload is aborted and
//! its [`RemoteCopy`] carries the error, so the run can finish what it can and still exit 2. The
//! object appears under its final name only at completion, after the archive, its hash and its
//! signature are final.
//!
//! Must not: read or write the NA database, or decide the archive's name (`ops::backup` does).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::backup_name::{BACKUP_PREFIX, BACKUP_SUFFIX, NAME_TIME_FORMAT, NAME_TIME_FORMAT_MS};
use super::s3::upload::Upload;
use super::s3::{Remote, S3Error, S3ErrorKind, S3Url};

/// Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete.
    Governance,
    /// Nobody, not even the account root, may delete before the date.
    Compliance,
}

impl LockMode {
    /// The header value (`GOVERNANCE`, `COMPLIANCE`).
    pub(crate) fn header(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Object Lock retention set on every object a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectLock {
    /// The mode.
    pub mode: LockMode,
    /// Days from the upload.
    pub days: u32,
}

/// One S3 destination of a backup run.
#[derive(Debug, Clone)]
pub(crate) struct RemoteTarget {
    /// The configured name, or the URL when it came from the command line unconfigured.
    pub name: String,
    /// The bucket and its credentials.
    pub remote: Arc<Remote>,
    /// The prefix objects go under.
    pub prefix: S3Url,
    /// Retention to set, if any.
    pub lock: Option<ObjectLock>,
}

/// What one copy became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyFacts {
    /// The object's ETag.
    pub etag: String,
    /// Its size as the server reports it.
    pub size: u64,
    /// Its lock mode, as the server reports it.
    pub lock_mode: Option<String>,
    /// Its retention's end, as the server reports it.
    pub retain_until: Option<String>,
}

/// One destination's copy: where it went and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct RemoteCopy {
    /// The destination's name.
    pub destination: String,
    /// The object.
    pub url: S3Url,
    /// The facts, or why the copy failed.
    pub result: Result<CopyFacts, S3Error>,
}

/// A destination during the run: its upload while it is alive.
pub(crate) struct Slot {
    target: RemoteTarget,
    url: S3Url,
    upload: Option<Upload>,
    failure: Option<S3Error>,
}

impl Slot {
    fn fail(&mut self, e: S3Error) {
        // Dropping the upload aborts it.
        self.upload = None;
        self.failure.get_or_insert(e);
    }

    fn lock_headers(&self, now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match self.target.lock {
            Some(lock) => vec![
                ("x-amz-object-lock-mode", lock.mode.header().to_string()),
                (
                    "x-amz-object-lock-retain-until-date",
                    (now + chrono::Duration::days(i64::from(lock.days))).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                ),
            ],
            None => Vec::new(),
        }
    }
}

/// A name free in every destination: `gm-<network>-<UTC second>.tar.gz.age`, or with the
/// milliseconds when that second is taken (the archive or its signature) in any of them.
/// Only the destinations whose bucket `checked` found usable are asked.
pub(crate) fn free_remote_name(
    targets: &[RemoteTarget],
    checked: &[Result<(), S3Error>],
    network: &str,
    now: DateTime<Utc>,
) -> String {
    let candidates = [now.format(NAME_TIME_FORMAT).to_string(), now.format(NAME_TIME_FORMAT_MS).to_string()];
    let usable: Vec<&RemoteTarget> = targets.iter().zip(checked).filter(|(_, c)| c.is_ok()).map(|(t, _)| t).collect();
    for stamp in &candidates {
        let name = format!("{BACKUP_PREFIX}{network}-{stamp}{BACKUP_SUFFIX}");
        if !usable.iter().any(|t| taken(t, &name)) {
            return name;
        }
    }
    // Both taken (or unknown): the millisecond name; each destination refuses it if it exists.
    format!("{BACKUP_PREFIX}{network}-{}{BACKUP_SUFFIX}", candidates[1])
}

fn taken(t: &RemoteTarget, name: &str) -> bool {
    let url = t.prefix.join(name);
    [url.key.clone(), format!("{}.sig", url.key)].iter().any(|k| matches!(t.remote.head(k), Ok(Some(_))))
}

/// Opens every destination whose bucket `checked` found usable: reaps uploads killed runs left
/// (journal in `journal_dir`), refuses an existing `name`, starts the upload. A destination that
/// fails carries its error; the others go on.
pub(crate) fn open(
    targets: &[RemoteTarget],
    checked: Vec<Result<(), S3Error>>,
    name: &str,
    journal_dir: &Path,
    now: DateTime<Utc>,
) -> Vec<Slot> {
    let remotes: Vec<Arc<Remote>> =
        targets.iter().zip(&checked).filter(|(_, c)| c.is_ok()).map(|(t, _)| Arc::clone(&t.remote)).collect();
    super::s3::upload::reap_abandoned(journal_dir, &remotes);
    targets
        .iter()
        .zip(checked)
        .map(|(t, checked)| {
            let url = t.prefix.join(name);
            let mut slot = Slot { target: t.clone(), url: url.clone(), upload: None, failure: None };
            let headers = slot.lock_headers(now);
            let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let started = checked.and_then(|()| {
                if t.remote.head(&url.key)?.is_some() {
                    return Err(t.remote.error(
                        S3ErrorKind::Exists,
                        "write",
                        &url.key,
                        "refusing to overwrite an existing backup",
                    ));
                }
                Upload::start(Arc::clone(&t.remote), &url.key, &header_refs, journal_dir)
            });
            match started {
                Ok(u) => slot.upload = Some(u),
                Err(e) => slot.fail(e),
            }
            slot
        })
        .collect()
}

/// Where the archive's bytes go: the local temporary file (when there is one) and every live
/// upload. A failing upload is dropped (aborted) and remembered; the write fails only when the
/// local file fails or no destination is left.
pub(crate) struct Sinks {
    /// The local temporary file.
    pub local: Option<File>,
    /// The destinations.
    pub slots: Vec<Slot>,
}

impl Write for Sinks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(f) = &mut self.local {
            f.write_all(data)?;
        }
        for slot in &mut self.slots {
            if let Some(upload) = slot.upload.as_mut() {
                if let Err(e) = upload.write_all(data) {
                    let err = s3_error_of(e, &slot.target.remote, &slot.url);
                    slot.fail(err);
                }
            }
        }
        if self.local.is_none() && self.slots.iter().all(|s| s.upload.is_none()) {
            return Err(io::Error::other("every destination of this backup failed"));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.local {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// The S3 error inside an upload's I/O error.
fn s3_error_of(e: io::Error, remote: &Remote, url: &S3Url) -> S3Error {
    match e.into_inner().map(|inner| inner.downcast::<S3Error>()) {
        Some(Ok(s3)) => *s3,
        Some(Err(other)) => remote.error(S3ErrorKind::Refused, "upload", &url.key, other.to_string()),
        None => remote.error(S3ErrorKind::Refused, "upload", &url.key, "the upload failed"),
    }
}

impl Sinks {
    /// The first failure, when every destination failed and there is no local file.
    pub(crate) fn all_failed(&self) -> Option<S3Error> {
        if self.local.is_some() || self.slots.iter().any(|s| s.upload.is_some()) {
            return None;
        }
        self.slots.iter().find_map(|s| s.failure.clone())
    }

    /// Sends every upload's last part and waits for all parts to be stored.
    pub(crate) fn finish_parts(&mut self) {
        for slot in &mut self.slots {
            if let Some(upload) = slot.upload.as_mut() {
                if let Err(e) = upload.finish() {
                    slot.fail(e);
                }
            }
        }
    }

    /// Uploads the signature `text` as `<object>.sig` beside each live upload (with its lock).
    pub(crate) fn put_signatures(&mut self, text: &str, now: DateTime<Utc>) {
        for slot in &mut self.slots {
            if slot.upload.is_none() {
                continue;
            }
            let headers = slot.lock_headers(now);
            let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let key = format!("{}.sig", slot.url.key);
            if let Err(e) = slot.target.remote.put(&key, text.as_bytes(), &refs) {
                slot.fail(e);
            }
        }
    }

    /// Completes every live upload and checks what the server stored: the size, and the lock when
    /// the destination sets one (a bucket without Object Lock ignores the headers: that copy is
    /// then reported failed, never claimed locked).
    pub(crate) fn complete(self, size: u64) -> Vec<RemoteCopy> {
        self.slots
            .into_iter()
            .map(|mut slot| {
                let result = match (slot.upload.take(), slot.failure.take()) {
                    (_, Some(e)) => Err(e),
                    (None, None) => Err(slot.target.remote.error(
                        S3ErrorKind::Refused,
                        "upload",
                        &slot.url.key,
                        "the upload did not start",
                    )),
                    (Some(upload), None) => upload.complete().and_then(|etag| confirm(&slot, etag, size)),
                };
                if let Err(e) = &result {
                    log::error!(target: "gm::ops", "backup copy to {} failed: {e}", slot.target.name);
                }
                RemoteCopy { destination: slot.target.name.clone(), url: slot.url.clone(), result }
            })
            .collect()
    }
}

/// Reads the completed object back (`HEAD`): its size must be the archive's, and its lock the one
/// asked for.
fn confirm(slot: &Slot, etag: String, size: u64) -> Result<CopyFacts, S3Error> {
    let remote = &slot.target.remote;
    let key = &slot.url.key;
    let meta = remote
        .head(key)?
        .ok_or_else(|| remote.error(S3ErrorKind::Refused, "confirm", key, "the completed object is not there"))?;
    if meta.size != size {
        return Err(remote.error(
            S3ErrorKind::Refused,
            "confirm",
            key,
            format!("the server stored {} bytes, the archive has {size}", meta.size),
        ));
    }
    if let Some(lock) = slot.target.lock {
        if meta.lock_mode.as_deref() != Some(lock.mode.header()) || meta.retain_until.is_none() {
            return Err(remote.error(
                S3ErrorKind::NotLocked,
                "lock",
                key,
                format!(
                    "the bucket did not apply Object Lock ({} for {} days): the copy is stored but NOT locked; \
                     the storage ignored the retention headers",
                    lock.mode.header(),
                    lock.days
                ),
            ));
        }
    }
    Ok(CopyFacts {
        etag: if meta.etag.is_empty() { etag } else { meta.etag },
        size: meta.size,
        lock_mode: meta.lock_mode,
        retain_until: meta.retain_until,
    })
}
