//! The one error a user sees. Every lower error converts in with `From`; [`Error`]'s `Display` renders
//! every message (lowercase, the failing thing named, the cause last) and [`Error::hint`] the remedy.
//! Exit codes are defined here once: 0 ok, 1 a check ran and said no, 2 the command could not run;
//! `gm probe` alone speaks Nagios (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), and every error it
//! returns is UNKNOWN; `gm readiness` uses 1 and 2 for its verdict, so a report it could not
//! produce exits 3.

use std::fmt;
use std::path::PathBuf;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::crypto::CryptoError;
use crate::http::HttpError;
use crate::model::ModelError;
use crate::ops::OpsError;
use crate::probe::ProbeError;
use crate::store::StoreError;

/// Exit status: a check ran and said no (verify, readiness, drill mismatch).
pub(crate) const EXIT_CHECK_FAILED: u8 = 1;
/// Exit status: the command could not run (usage, config, I/O).
pub(crate) const EXIT_CANNOT_RUN: u8 = 2;
/// Exit status of `gm probe` when the probe itself could not run or decide: Nagios UNKNOWN.
pub(crate) const EXIT_PROBE_UNKNOWN: u8 = 3;
/// Exit status of `gm readiness` when the report could not be produced (0, 1 and 2 are its verdict:
/// ready, only warnings, a check failed).
pub(crate) const EXIT_READINESS_NOT_PRODUCED: u8 = 3;

/// A user-facing failure.
#[derive(Debug)]
pub enum Error {
    /// Bad or conflicting options.
    Usage {
        /// The message shown.
        message: String,
        /// What the user can do.
        hint: Option<String>,
    },
    /// A file operation failed.
    Io {
        /// The operation that failed.
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file exists and `--force` was not given.
    Exists {
        /// The file involved.
        path: PathBuf,
    },
    /// A JSON file could not be parsed.
    Json {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An object does not validate against its schema.
    Model {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: ModelError,
    },
    /// Key material problem.
    Crypto(CryptoError),
    /// Configuration problem.
    Config(ConfigError),
    /// Database problem.
    Store(StoreError),
    /// Listener problem.
    Http(HttpError),
    /// A managed operation failed.
    Ops(OpsError),
    /// An NA request failed (exit 2) or the NA refused it (exit 1).
    Client(ClientError),
    /// The command refused to act, for a stated reason.
    Refused {
        /// The message shown.
        message: String,
        /// What the user can do.
        hint: Option<String>,
    },
    /// A check ran and failed (exit 1).
    CheckFailed {
        /// The message shown.
        message: String,
    },
    /// The probe's own state file or textfile failed.
    Probe(ProbeError),
    /// Any error of `gm probe`: rendered as the inner error, exit 3 (Nagios UNKNOWN).
    ProbeUnknown(Box<Error>),
    /// `gm readiness` could not produce its report: rendered as the inner error with its hint,
    /// exit 3 (2 means a check failed).
    ReadinessNotProduced(Box<Error>),
    /// A failure several commands share, with its message and hint defined together.
    Named(Named),
}

/// The failures several commands share. Each variant's message and hint are written side by side
/// in [`Named::render`], so every command that meets it says the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// A command that opens a backup got neither `--identity` nor `--passphrase-file`.
    NoDecryptionKey {
        /// What needs the key (`verify`, `a drill`).
        command: &'static str,
    },
    /// Both `--identity` and `--passphrase-file` were given.
    TwoDecryptionKeys,
    /// Both recipients and a passphrase file were given.
    TwoEncryptionKeys,
    /// `--validity-hours 0`.
    ZeroValidity {
        /// The validity asked for when the flag is omitted.
        default_hours: u32,
    },
    /// No `[cron.jobs.NAME]` of that name.
    UnknownJob {
        /// The name given.
        name: String,
        /// The jobs that are configured.
        configured: Vec<String>,
    },
    /// The gm home given (or defaulted) is not an existing folder.
    NoHome {
        /// The home.
        home: PathBuf,
        /// Where it came from: `--home`, `$GM_HOME` or the default home.
        source: &'static str,
        /// It exists, but is not a folder.
        not_a_folder: bool,
    },
    /// `--ca-file` cannot be read.
    CaFileUnreadable {
        /// The file given.
        path: PathBuf,
        /// What the file system said.
        cause: String,
    },
    /// `--ca-file` holds no certificate, or one that does not parse.
    CaFileInvalid {
        /// The file given.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A backup failed a check that a genuine one passes: damaged or forged (exit 1).
    ForgedBackup {
        /// The check that failed.
        check: String,
        /// What it found.
        problem: String,
    },
}

impl Named {
    /// The message and the hint.
    pub(crate) fn render(&self) -> (String, String) {
        match self {
            Named::NoDecryptionKey { command } => (
                format!("{command} needs --identity FILE or --passphrase-file FILE"),
                "the key the backup was encrypted to".into(),
            ),
            Named::TwoDecryptionKeys => (
                "give --identity or --passphrase-file, not both".into(),
                "the one the backup was encrypted for".into(),
            ),
            Named::TwoEncryptionKeys => (
                "give recipients or a passphrase file, not both".into(),
                "recipients for hosts that must not decrypt; a passphrase for offline customer-held custody".into(),
            ),
            Named::ZeroValidity { default_hours } => (
                "--validity-hours must be at least 1".into(),
                format!("omit it for {default_hours} hours"),
            ),
            Named::UnknownJob { name, configured } => (
                format!("no job named {name:?}"),
                format!(
                    "configured jobs: {} (gm cron list shows them)",
                    if configured.is_empty() { "none".to_string() } else { configured.join(", ") }
                ),
            ),
            Named::NoHome { home, source, not_a_folder } => (
                format!(
                    "gm home {} ({source}) {}",
                    home.display(),
                    if *not_a_folder { "is not a folder" } else { "does not exist" }
                ),
                format!(
                    "pass --home (or set GM_HOME) to an existing home; create a sandbox with `gm quickstart --home {}`, or install an NA with scripts/install.sh (home {})",
                    home.display(),
                    crate::config::DEFAULT_HOME
                ),
            ),
            Named::CaFileUnreadable { path, cause } => (
                format!("cannot read --ca-file {}: {cause}", path.display()),
                "pass the PEM file of your private CA's certificate(s), readable by this user, e.g. --ca-file /etc/gm/ca.pem".into(),
            ),
            Named::CaFileInvalid { path, problem } => (
                format!("cannot use --ca-file {}: {problem}", path.display()),
                "pass the certificate(s) of the CA that issued the NA's TLS certificate, PEM encoded (-----BEGIN CERTIFICATE----- blocks; openssl x509 -in ca.der -inform der -out ca.pem converts DER)".into(),
            ),
            Named::ForgedBackup { check, problem } => (
                format!("check {check} failed: {problem}"),
                "do not restore it; keep it for the incident record, and take or pick a backup whose signature verifies (a genuine old unsigned backup restores only with --allow-unsigned)".into(),
            ),
        }
    }
}

impl From<Named> for Error {
    fn from(n: Named) -> Error {
        Error::Named(n)
    }
}

impl Error {
    /// A usage error with a hint.
    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    /// A refusal with a hint.
    pub(crate) fn refused(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Refused { message: message.into(), hint: Some(hint.into()) }
    }

    /// An I/O failure wrapper for `map_err`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io { action, path, source }
    }

    /// Wraps an error of `gm probe` so it exits UNKNOWN (3).
    pub(crate) fn probe_unknown(e: Error) -> Error {
        match e {
            Error::ProbeUnknown(_) => e,
            other => Error::ProbeUnknown(Box::new(other)),
        }
    }

    /// Wraps an error of `gm readiness` before its report exists so it exits 3.
    pub(crate) fn readiness_not_produced(e: Error) -> Error {
        match e {
            Error::ReadinessNotProduced(_) => e,
            other => Error::ReadinessNotProduced(Box::new(other)),
        }
    }

    /// The process exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Probe(_) | Error::ProbeUnknown(_) => EXIT_PROBE_UNKNOWN,
            Error::ReadinessNotProduced(_) => EXIT_READINESS_NOT_PRODUCED,
            Error::CheckFailed { .. } | Error::Named(Named::ForgedBackup { .. }) => EXIT_CHECK_FAILED,
            Error::Client(e) if e.is_refusal() => EXIT_CHECK_FAILED,
            _ => EXIT_CANNOT_RUN,
        }
    }

    /// What the user can do about it, when there is something.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } | Error::Refused { hint, .. } => hint.clone(),
            Error::Named(n) => Some(n.render().1),
            Error::Exists { .. } => Some("pass --force to replace it, or choose another path".to_string()),
            Error::Crypto(CryptoError::BadKeyFile { .. }) => Some(
                "key files are written by `gm keygen` (or upstream `genesis-mesh keygen`): a `# Ed25519 … Key` line and one base64 line"
                    .to_string(),
            ),
            Error::Store(StoreError::NotSqlite { .. }) => {
                Some("check --db-path / DB_PATH: it must name an SQLite database (or a new file)".to_string())
            }
            Error::Store(StoreError::SchemaTooNew { .. }) => {
                Some("use the gm or upstream version that wrote this database; gm never downgrades a schema".to_string())
            }
            Error::Http(HttpError::Bind { .. }) => {
                Some("stop the other process using the port, or choose another with --bind or PORT".to_string())
            }
            Error::Store(StoreError::Missing { .. }) => {
                Some("check --db-path, DB_PATH or --home: the database must already exist".to_string())
            }
            Error::Config(_) => Some("fix the setting named above; `gm serve --help` lists every setting".to_string()),
            Error::Ops(OpsError::Exists { .. }) => {
                Some("pass --force to replace it, or choose another --output".to_string())
            }
            Error::Ops(OpsError::OutputIsDatabase { .. }) => {
                Some("choose an --output outside the database and its -wal, -shm and -journal files".to_string())
            }
            Error::Ops(OpsError::Remote(e)) => Some(e.hint()),
            Error::Ops(OpsError::MemoryDatabase) => Some("point --db-path at the NA's database file".to_string()),
            Error::Ops(OpsError::EmptyWindow { .. }) => Some("--since must be earlier than --until".to_string()),
            Error::Ops(OpsError::PruneIncomplete { .. }) => Some(
                "fix the cause (permissions, a read-only mount) and run the same gm managed prune again: it deletes only what the rules still drop"
                    .to_string(),
            ),
            Error::Ops(OpsError::Busy { .. }) => Some(
                "a process holds an exclusive lock on the database (a sqlite3 shell or maintenance job with locking_mode=EXCLUSIVE, or a long write): let it finish and run the backup again, or raise --busy-timeout"
                    .to_string(),
            ),
            Error::Ops(e @ (OpsError::Write { .. } | OpsError::Io { .. })) if crate::ops::error::caused_by_device_error(e) => {
                let path = match e {
                    OpsError::Write { target, .. } => target.as_path(),
                    OpsError::Io { path, .. } => path.as_path(),
                    _ => std::path::Path::new("."),
                };
                let folder = nearest_folder(path);
                Some(format!(
                    "the device holding {} reported an I/O error (EIO): check the disk and the kernel log (dmesg), or use a folder on another device, then run the command again (it removes scratch files this run could not)",
                    folder.display()
                ))
            }
            Error::Io { path, source, .. } if crate::ops::error::is_device_error(source) => {
                let folder = nearest_folder(path);
                Some(format!(
                    "the device holding {} reported an I/O error (EIO): check the disk and the kernel log (dmesg), then run the command again",
                    folder.display()
                ))
            }
            Error::Ops(e @ OpsError::Write { target, .. }) => {
                let folder = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let device = if crate::ops::error::caused_by_sqlite_io_error(e) {
                    " (if the kernel log, dmesg, shows I/O errors, the device is failing: write the backup to another one)"
                } else {
                    ""
                };
                Some(format!(
                    "free space in {} (df -h) or raise its quota or file-size limit (ulimit -f), then run the backup again; no partial backup was left behind{device}",
                    folder.display()
                ))
            }
            Error::Ops(OpsError::Io { path, source, .. }) if crate::ops::error::is_out_of_space(source) => {
                let folder = nearest_folder(path);
                Some(format!(
                    "free space in {} (df -h) or raise its quota or file-size limit (ulimit -f), then run the command again",
                    folder.display()
                ))
            }
            Error::Client(e) => super::client_hint::client_hint(e),
            Error::Probe(ProbeError::StateCorrupt { .. }) => {
                Some("delete the state file: the next run starts counting failures afresh".to_string())
            }
            Error::ProbeUnknown(inner) | Error::ReadinessNotProduced(inner) => inner.hint(),
            _ => None,
        }
    }
}

/// The nearest folder above `path` that still exists (a scratch folder is gone by the time a hint
/// prints), for hints that name where to look.
fn nearest_folder(path: &std::path::Path) -> &std::path::Path {
    path.ancestors().skip(1).find(|p| p.is_dir()).unwrap_or(std::path::Path::new("."))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message, .. } | Error::Refused { message, .. } | Error::CheckFailed { message } => {
                f.write_str(message)
            }
            Error::Io { action, path, source } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Exists { path } => {
                write!(f, "refusing to overwrite existing file {}", path.display())
            }
            Error::Json { path, problem } => {
                write!(f, "cannot read {} as JSON: {problem}", path.display())
            }
            Error::Model { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Crypto(e) => write!(f, "{e}"),
            Error::Config(e) => write!(f, "{e}"),
            Error::Store(e) => write!(f, "{e}"),
            Error::Http(e) => write!(f, "{e}"),
            Error::Ops(e) => write!(f, "{e}"),
            Error::Client(e) => write!(f, "{e}"),
            Error::Probe(e) => write!(f, "{e}"),
            Error::ProbeUnknown(inner) | Error::ReadinessNotProduced(inner) => write!(f, "{inner}"),
            Error::Named(n) => f.write_str(&n.render().0),
        }
    }
}

impl std::error::Error for Error {}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Error {
        Error::Crypto(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Store(e)
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Error {
        Error::Http(e)
    }
}

impl From<OpsError> for Error {
    fn from(e: OpsError) -> Error {
        match e {
            // Database errors keep the store's hints.
            OpsError::Store(e) => Error::Store(e),
            other => Error::Ops(other),
        }
    }
}

impl From<ProbeError> for Error {
    fn from(e: ProbeError) -> Error {
        Error::Probe(e)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Error {
        Error::Client(e)
    }
}
