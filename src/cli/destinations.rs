//! Turning what a managed command was given (a folder, a `[[backup.destinations]]` name, an
//! `s3://bucket/prefix` URL) into a local path or a connected S3 target, with gm.toml's
//! destinations and the AWS environment; and fetching an S3 backup (archive and signature) into a
//! private scratch folder for verify, restore and restore-drill.

use std::path::{Path, PathBuf};

use crate::config::{self, Env};
use crate::ops::backup::Scratch;
use crate::ops::backup_remote::RemoteTarget;
use crate::ops::destination::{self, Destination, DestinationError};
use crate::ops::s3::S3Url;

use super::error::Error;

impl From<DestinationError> for Error {
    fn from(e: DestinationError) -> Error {
        Error::Refused { message: e.message, hint: Some(e.hint) }
    }
}

/// A backup location as given: a local path or an S3 URL.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A file or folder.
    Local(PathBuf),
    /// An object or prefix.
    S3(S3Url),
}

impl Location {
    /// Parses a command-line location (`s3://…` or a path).
    pub(crate) fn parse(text: &Path) -> Result<Location, Error> {
        let s = text.to_string_lossy();
        if S3Url::is_s3(&s) {
            S3Url::parse(&s)
                .map(Location::S3)
                .map_err(|e| Error::usage(e, "write s3://bucket/prefix (bucket: 3 to 63 of a-z, 0-9, '-', '.')"))
        } else {
            Ok(Location::Local(text.to_path_buf()))
        }
    }
}

/// gm.toml's `[[backup.destinations]]` (none without a gm.toml) and the AWS environment.
pub(crate) fn configured(home: Option<&Path>) -> Result<(Vec<Destination>, destination::AwsEnv), Error> {
    let env = Env::from_process();
    let resolved = config::resolve_home(home, &env);
    let file = match config::load_file(&resolved) {
        Ok(f) => f,
        // Reading a backup needs no gm home; the default one may be unreadable to this user.
        Err(config::ConfigError::Read { .. }) if home.is_none() => config::ConfigFile::default(),
        Err(e) => return Err(e.into()),
    };
    Ok((config::backup_destinations(&resolved, &file)?, config::aws_env(&env)))
}

/// The S3 target `spec` names: a configured destination's name, or an `s3://` URL (under a
/// configured destination when one covers it).
pub(crate) fn target(spec: &str, home: Option<&Path>) -> Result<RemoteTarget, Error> {
    let (all, env) = configured(home)?;
    if S3Url::is_s3(spec) {
        let url = S3Url::parse(spec).map_err(|e| Error::usage(e, "write s3://bucket/prefix"))?;
        return Ok(destination::for_url(&url, &all).target(&url, &env)?);
    }
    let d = destination::named(spec, &all)?;
    Ok(d.target(&d.url, &env)?)
}

/// The S3 target holding `url` (an object or a prefix).
pub(crate) fn target_for_url(url: &S3Url, home: Option<&Path>) -> Result<RemoteTarget, Error> {
    let (all, env) = configured(home)?;
    Ok(destination::for_url(url, &all).target(url, &env)?)
}

/// A backup to read: the file as given, or an S3 object (and its `.sig`) downloaded into a
/// private scratch folder, removed when this is dropped.
pub(crate) struct Readable {
    /// The local file to read.
    pub path: PathBuf,
    /// What the user named: the path, or the `s3://` URL (also the ledger's artifact).
    pub shown: String,
    scratch: Option<Scratch>,
}

impl Readable {
    /// `text` with the scratch copy's path replaced by what the user named (an `s3://` URL), so a
    /// report or error never points at a file that is gone once the command ends.
    pub(crate) fn in_user_terms(&self, text: &str) -> String {
        if self.scratch.is_none() {
            return text.to_string();
        }
        text.replace(&self.path.display().to_string(), &self.shown)
    }

    /// An ops failure with its messages in user terms ([`Readable::in_user_terms`]).
    pub(crate) fn ops_in_user_terms(&self, e: crate::ops::OpsError) -> crate::ops::OpsError {
        use crate::ops::OpsError;
        match e {
            OpsError::Check { check, problem } => OpsError::Check { check, problem: self.in_user_terms(&problem) },
            OpsError::Archive { problem } => OpsError::Archive { problem: self.in_user_terms(&problem) },
            OpsError::Crypto { problem } => OpsError::Crypto { problem: self.in_user_terms(&problem) },
            OpsError::Refused { reason } => OpsError::Refused { reason: self.in_user_terms(&reason) },
            other => other,
        }
    }

    /// `given` as a readable local file: a path as is; an `s3://` object downloaded into a scratch
    /// folder in `scratch_parent`, at most `max_bytes`.
    pub(crate) fn get(
        given: &Path,
        home: Option<&Path>,
        scratch_parent: &Path,
        max_bytes: u64,
    ) -> Result<Readable, Error> {
        match Location::parse(given)? {
            Location::Local(path) => Ok(Readable { shown: path.display().to_string(), path, scratch: None }),
            Location::S3(url) => {
                let scratch = Scratch::new(scratch_parent, ".gm-fetch")?;
                let path = fetch(&url, home, &scratch, max_bytes)?;
                Ok(Readable { path, shown: url.to_string(), scratch: Some(scratch) })
            }
        }
    }
}

/// Downloads the backup at `url` and its `.sig` (when there is one) into `scratch`, under the
/// object's own name (the signature names it), refusing more than `max_bytes`. Returns the
/// local path of the archive.
fn fetch(url: &S3Url, home: Option<&Path>, scratch: &Scratch, max_bytes: u64) -> Result<PathBuf, Error> {
    let t = target_for_url(url, home)?;
    let name = url.name();
    if crate::ops::backup_name::BackupFile::parse(name).is_none() {
        return Err(Error::usage(
            format!("{url} does not name a backup (gm-<network>-<UTC>.tar.gz.age)"),
            "give the object, s3://bucket/prefix/gm-<network>-<UTC>.tar.gz.age, or use --latest s3://bucket/prefix",
        ));
    }
    let path = scratch.path().join(name);
    let mut file = crate::files::private::create_new_private(&path).map_err(Error::io("create", &path))?;
    // An archive larger than the unpacking limit cannot pass verify: a failed check (exit 1), as
    // for a file, not a storage failure.
    t.remote.get_into(&url.key, &mut file, max_bytes).map_err(|e| match e.kind {
        crate::ops::s3::S3ErrorKind::TooLarge => Error::CheckFailed { message: format!("check size failed: {e}") },
        _ => Error::from(crate::ops::OpsError::from(e)),
    })?;
    file.sync_all().map_err(Error::io("write", &path))?;
    let sig_key = format!("{}.sig", url.key);
    if t.remote.head(&sig_key).map_err(crate::ops::OpsError::from)?.is_some() {
        let sig_path = crate::ops::backup_signature::sidecar_path(&path);
        let mut sig = crate::files::private::create_new_private(&sig_path).map_err(Error::io("create", &sig_path))?;
        t.remote.get_into(&sig_key, &mut sig, 64 * 1024).map_err(crate::ops::OpsError::from)?;
    }
    Ok(path)
}

/// The newest signed backup under an S3 prefix (by signed time), and the backup-named objects
/// passed over, with the reason.
pub(crate) fn newest_in_bucket(
    url: &S3Url,
    home: Option<&Path>,
    pinned: &crate::ops::backup_signature::TrustedKeys,
) -> Result<(S3Url, Vec<crate::ops::catalog::Rejected>), Error> {
    use crate::ops::prune::folder::IgnoredKind;
    let t = target_for_url(url, home)?;
    let found = crate::ops::prune::bucket::scan(&t.remote, url, pinned).map_err(crate::ops::OpsError::from)?;
    let rejected: Vec<crate::ops::catalog::Rejected> = found
        .ignored
        .iter()
        .filter(|i| i.kind == IgnoredKind::Unverified)
        .map(|i| crate::ops::catalog::Rejected { name: i.name.clone(), reason: i.detail.clone().unwrap_or_default() })
        .collect();
    for r in &rejected {
        log::warn!(target: "gm::ops", "passed over {} in {url}: {}", r.name, r.reason);
    }
    match found.backups.iter().max_by(|a, b| (a.taken_at, &a.name).cmp(&(b.taken_at, &b.name))) {
        Some(b) => Ok((url.join(&b.name), rejected)),
        None => Err(Error::refused(
            format!(
                "no signed backup in {url} ({} backup-named object(s) passed over: unsigned, or the signature does not check out)",
                rejected.len()
            ),
            "take one with gm managed backup --to …, or drill an object by name with --backup s3://…",
        )),
    }
}
