//! Configuration: `gm.toml` in the gm home, upstream's environment names and command-line flags,
//! merged into typed settings with the precedence flags > environment > file > defaults.
//!
//! Paths in `gm.toml` are relative to the home folder; paths from the environment or flags are
//! relative to the working directory (as upstream's variables are). Only `cli` calls this module;
//! below `cli`, no code reads the environment, `gm.toml` or argv.

pub mod cron;
pub mod error;
pub mod file;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::Limits;
use crate::na::auth::admin::SignaturePolicy;
use crate::na::auth::operators::KeySource;
use crate::na::auth_failures::AuthFailureLimits;
use crate::na::verify_limits::VerifyLimits;
use crate::ops::archive::ExtractLimits;

pub use error::ConfigError;
pub use file::ConfigFile;

/// The name of the config file inside the gm home.
pub(crate) const CONFIG_FILE: &str = "gm.toml";

/// Default home when neither `--home` nor `$GM_HOME` is given.
pub(crate) const DEFAULT_HOME: &str = "/etc/gm";

/// The environment variables gm reads, captured once so tests can pass their own.
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

/// Every variable gm understands (`na-wire.md` §1.1, `deviations.md` D2/D6/D10, `operations.md` §6).
pub(crate) const ENV_NAMES: [&str; 19] = [
    "NA_ADMIN_LEGACY_SIGNATURES",
    "GM_HOME",
    "GENESIS_FILE",
    "NA_PRIVATE_KEY_FILE",
    "DB_PATH",
    "NA_KEY_ID",
    "OPERATOR_PUBLIC_KEYS_JSON",
    "PORT",
    "NA_PROXY_HOPS",
    "NA_MAX_REQUEST_BYTES",
    "GENESIS_LOG_LEVEL",
    "GENESIS_LOG_FORMAT",
    "CREDENTIALS_DIRECTORY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
];

impl Env {
    /// Reads gm's variables from the process environment.
    pub(crate) fn from_process() -> Env {
        Env(ENV_NAMES.iter().filter_map(|n| std::env::var(n).ok().map(|v| (n.to_string(), v))).collect())
    }

    /// An environment holding exactly `pairs` (tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// A variable's value; an empty value counts as unset (as upstream treats `OPERATOR_PUBLIC_KEYS_JSON`).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Resolves the gm home: `--home`, else `$GM_HOME`, else `/etc/gm`.
pub(crate) fn resolve_home(flag: Option<&Path>, env: &Env) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env.get("GM_HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME))
}

/// Flags of `gm serve` that override file and environment.
#[derive(Debug, Clone, Default)]
pub struct ServeFlags {
    /// `--bind`.
    pub bind: Option<SocketAddr>,
    /// `--genesis`.
    pub genesis_file: Option<PathBuf>,
    /// `--na-key`.
    pub na_key_file: Option<PathBuf>,
    /// `--db-path`.
    pub db_path: Option<PathBuf>,
    /// `--na-key-id`.
    pub na_key_id: Option<String>,
    /// `--trusted-proxy-hops`.
    pub proxy_hops: Option<usize>,
    /// `--allow-unsigned-genesis`.
    pub allow_unsigned_genesis: bool,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`.
    pub tls_client_ca: Option<PathBuf>,
}

/// Everything `gm serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The gm home.
    pub home: PathBuf,
    /// Signed genesis file.
    pub genesis_file: PathBuf,
    /// NA private key file (where a key file would be; see [`ServeSettings::na_key_source`]).
    pub na_key_file: PathBuf,
    /// Where the NA signs from: a key file, a systemd credential or a remote signer.
    pub na_key_source: NaKeySource,
    /// SQLite database.
    pub db_path: PathBuf,
    /// NA key id label.
    pub na_key_id: String,
    /// Listen address.
    pub bind: SocketAddr,
    /// Trusted proxy hops (D2).
    pub proxy_hops: usize,
    /// Whether `/readyz` shows the DB path.
    pub readyz_shows_db_path: bool,
    /// Start with an unsigned genesis (development only, D11).
    pub allow_unsigned_genesis: bool,
    /// HTTP limits.
    pub limits: Limits,
    /// Where operator public keys come from.
    pub operator_keys: KeySource,
    /// Accepted admin signature versions (D6).
    pub admin_signature: SignaturePolicy,
    /// What decided [`ServeSettings::admin_signature`] (logged at start, shown by readiness).
    pub admin_signature_origin: AdminSignatureOrigin,
    /// How long a renewed certificate's predecessor stays usable (D5).
    pub supersede_grace: chrono::Duration,
    /// The signature-work bound of the public verify routes (G1).
    pub verify_limits: VerifyLimits,
    /// Node-auth failure limits and the auth-failure audit collapse (G3).
    pub auth_failures: AuthFailureLimits,
    /// Built-in TLS: the certificate chain and key files (`[tls]`, `--tls-cert`/`--tls-key`).
    pub tls: Option<TlsFiles>,
}

/// The files of built-in TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// CA certificates whose client certificates the operator-only surface requires.
    pub client_ca: Option<PathBuf>,
    /// A plain-HTTP listener that redirects to HTTPS.
    pub redirect_http: Option<SocketAddr>,
}

/// Loads `gm.toml` from `home` (absent file = all defaults).
pub(crate) fn load_file(home: &Path) -> Result<ConfigFile, ConfigError> {
    let path = home.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => ConfigFile::parse(&text).map_err(|problem| ConfigError::Invalid { path, problem }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

/// The archive-reading bounds from `[backup]` in `gm.toml` (defaults where unset).
pub(crate) fn extract_limits(home: &Path, file: &ConfigFile) -> Result<ExtractLimits, ConfigError> {
    let defaults = ExtractLimits::default();
    let source_name = home.join(CONFIG_FILE).display().to_string();
    let positive = |field: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(ConfigError::Value {
            source_name: source_name.clone(),
            field: field.to_string(),
            problem: "must be at least 1".to_string(),
        }),
        v => Ok(v.unwrap_or(default)),
    };
    Ok(ExtractLimits {
        max_unpacked_bytes: positive(
            "backup.max_unpacked_bytes",
            file.backup.max_unpacked_bytes,
            defaults.max_unpacked_bytes,
        )?,
        max_expansion_ratio: positive(
            "backup.max_expansion_ratio",
            file.backup.max_expansion_ratio,
            defaults.max_expansion_ratio,
        )?,
    })
}

/// The AWS variables of `env`, for S3 destinations.
pub(crate) fn aws_env(env: &Env) -> crate::ops::destination::AwsEnv {
    let get = |n: &str| env.get(n).map(str::to_string);
    crate::ops::destination::AwsEnv {
        access_key_id: get("AWS_ACCESS_KEY_ID"),
        secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
        session_token: get("AWS_SESSION_TOKEN"),
        region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        endpoint_url: get("AWS_ENDPOINT_URL"),
        credentials_directory: get("CREDENTIALS_DIRECTORY").map(PathBuf::from),
    }
}

/// `[[backup.destinations]]`, validated: names unique and well formed, URLs parsed, credential
/// files resolved against the home, lock settings in range.
pub(crate) fn backup_destinations(
    home: &Path,
    file: &ConfigFile,
) -> Result<Vec<crate::ops::destination::Destination>, ConfigError> {
    use crate::ops::backup_remote::{LockMode, ObjectLock};
    use crate::ops::destination::{CredentialSource, Destination};
    let source_name = home.join(CONFIG_FILE).display().to_string();
    let bad = |i: usize, field: &str, problem: String| ConfigError::Value {
        source_name: source_name.clone(),
        field: format!("backup.destinations[{i}].{field}"),
        problem,
    };
    let mut out: Vec<Destination> = Vec::new();
    for (i, d) in file.backup.destinations.iter().enumerate() {
        let name_ok = (1..=32).contains(&d.name.len())
            && d.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(bad(i, "name", format!("{:?} must be 1 to 32 of a-z, 0-9 and '-'", d.name)));
        }
        if out.iter().any(|o| o.name == d.name) {
            return Err(bad(i, "name", format!("{:?} is declared twice", d.name)));
        }
        let url = crate::ops::s3::S3Url::parse(&d.url).map_err(|e| bad(i, "url", e))?;
        let credentials = match (&d.credentials_file, &d.credential) {
            (Some(_), Some(_)) => {
                return Err(bad(i, "credential", "set credentials_file or credential, not both".into()))
            }
            (Some(f), None) => CredentialSource::File(home.join(f)),
            (None, Some(c)) if !c.is_empty() && !c.contains('/') => CredentialSource::Systemd(c.clone()),
            (None, Some(c)) => return Err(bad(i, "credential", format!("{c:?} is not a credential name"))),
            (None, None) => CredentialSource::Environment,
        };
        let lock = match &d.object_lock {
            None => None,
            Some(l) => {
                let mode = match l.mode.as_str() {
                    "governance" => LockMode::Governance,
                    "compliance" => LockMode::Compliance,
                    other => {
                        return Err(bad(i, "object_lock.mode", format!("{other:?} is not governance or compliance")))
                    }
                };
                if !(1..=36_500).contains(&l.days) {
                    return Err(bad(i, "object_lock.days", format!("{} is not 1 to 36500", l.days)));
                }
                Some(ObjectLock { mode, days: l.days })
            }
        };
        out.push(Destination {
            name: d.name.clone(),
            url,
            endpoint: d.endpoint.clone(),
            region: d.region.clone(),
            path_style: d.path_style,
            credentials,
            lock,
        });
    }
    Ok(out)
}

/// Where `gm serve` gets its NA signatures from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NaKeySource {
    /// A key file, and what named it (`--na-key`, `NA_PRIVATE_KEY_FILE`, `gm.toml`, the default).
    File {
        /// The file.
        path: PathBuf,
        /// What named it.
        origin: &'static str,
    },
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/NAME`).
    Credential {
        /// The credential name.
        name: String,
        /// The file systemd made for it.
        path: PathBuf,
    },
    /// The customer's remote signer (customer-held custody): no key in this process.
    RemoteSigner {
        /// The private address the signer dials.
        listen: SocketAddr,
        /// The NA host key file.
        host_key_file: PathBuf,
    },
}

impl NaKeySource {
    /// The short name recorded for readiness and metrics: `file`, `credential`, `remote-signer`.
    pub fn kind(&self) -> &'static str {
        match self {
            NaKeySource::File { .. } => "file",
            NaKeySource::Credential { .. } => "credential",
            NaKeySource::RemoteSigner { .. } => "remote-signer",
        }
    }
}

/// Resolves where the NA signs from: `[signer] listen` means a remote signer (and then no key may
/// be named); else a key named by flag or `NA_PRIVATE_KEY_FILE`; else the systemd credential when
/// systemd provided it; else the key file of `gm.toml` or the default.
fn resolve_key_source(
    home: &Path,
    file: &ConfigFile,
    env: &Env,
    flags: &ServeFlags,
    bind: SocketAddr,
) -> Result<(PathBuf, NaKeySource), ConfigError> {
    let default_file = home.join(file.na.na_private_key_file.as_deref().unwrap_or("keys/na.key"));
    let named = match (&flags.na_key_file, env.get("NA_PRIVATE_KEY_FILE")) {
        (Some(p), _) => Some((p.clone(), "--na-key")),
        (None, Some(p)) => Some((PathBuf::from(p), "NA_PRIVATE_KEY_FILE")),
        (None, None) => None,
    };
    if let Some(text) = &file.signer.listen {
        let value_error = |problem: String| ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "signer.listen".to_string(),
            problem,
        };
        let listen: SocketAddr =
            text.parse().map_err(|_| value_error(format!("{text:?} is not an address like 10.0.0.5:8444")))?;
        if listen.port() != 0 && listen.port() == bind.port() {
            return Err(value_error(format!(
                "{listen} uses the public port {} (the signer listens on a private address and port of its own)",
                bind.port()
            )));
        }
        if let Some((path, origin)) = named {
            return Err(value_error(format!(
                "[signer] listen is set (customer-held custody: the NA holds no key), but {origin} names the key {}; remove one of the two",
                path.display()
            )));
        }
        let host_key_file = home.join(file.signer.host_key_file.as_deref().unwrap_or("keys/na-host.key"));
        return Ok((default_file, NaKeySource::RemoteSigner { listen, host_key_file }));
    }
    if let Some((path, origin)) = named {
        return Ok((path.clone(), NaKeySource::File { path, origin }));
    }
    let name = file.na.key_credential.clone().unwrap_or_else(|| "na-key".to_string());
    if let Some(dir) = env.get("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = Path::new(dir).join(&name);
        if path.is_file() {
            return Ok((path.clone(), NaKeySource::Credential { name, path }));
        }
    }
    let origin = if file.na.na_private_key_file.is_some() { "gm.toml [na] na_private_key_file" } else { "the default" };
    Ok((default_file.clone(), NaKeySource::File { path: default_file, origin }))
}

/// Merges defaults, `gm.toml`, the environment and flags into [`ServeSettings`].
pub fn serve_settings(
    home: &Path,
    file: &ConfigFile,
    env: &Env,
    flags: &ServeFlags,
) -> Result<ServeSettings, ConfigError> {
    let in_home = |p: &Option<String>, default: &str| home.join(p.as_deref().unwrap_or(default));
    let from_env = |name: &str| env.get(name).map(PathBuf::from);
    let genesis_file = flags
        .genesis_file
        .clone()
        .or_else(|| from_env("GENESIS_FILE"))
        .unwrap_or_else(|| in_home(&file.na.genesis_file, "genesis.signed.json"));
    let db_path = resolve_db_path(home, file, env, flags.db_path.as_deref());
    let na_key_id = flags
        .na_key_id
        .clone()
        .or_else(|| env.get("NA_KEY_ID").map(str::to_string))
        .or_else(|| file.na.na_key_id.clone())
        .unwrap_or_else(|| "na-2025-q1".to_string());
    let bind = resolve_bind(file, env, flags)?;
    let (na_key_file, na_key_source) = resolve_key_source(home, file, env, flags, bind)?;
    let proxy_hops = match flags.proxy_hops {
        Some(n) => n,
        None => match env.get("NA_PROXY_HOPS") {
            Some(v) => parse_env_number("NA_PROXY_HOPS", v)?,
            None => file.server.trusted_proxy_hops.unwrap_or(0),
        },
    };
    let limits = resolve_limits(file, env, proxy_hops)?;
    let operator_keys = match env.get("OPERATOR_PUBLIC_KEYS_JSON") {
        Some(json) => KeySource::Inline(json.to_string()),
        None => KeySource::File(operator_keys_file(home, file)),
    };
    let (admin_signature, admin_signature_origin) = resolve_signature_policy(file, env)?;
    let grace = file.server.renewal_grace_seconds.unwrap_or(3600);
    let supersede_grace =
        chrono::Duration::try_seconds(i64::try_from(grace).unwrap_or(i64::MAX)).ok_or_else(|| ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.renewal_grace_seconds".to_string(),
            problem: "too large".to_string(),
        })?;
    let verify_limits = resolve_verify_limits(file)?;
    let auth_failures = resolve_auth_failures(file)?;
    let tls_cert = flags.tls_cert.clone().or_else(|| file.tls.cert_file.as_ref().map(|f| home.join(f)));
    let tls_key = flags.tls_key.clone().or_else(|| file.tls.key_file.as_ref().map(|f| home.join(f)));
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: flags.tls_client_ca.clone().or_else(|| file.tls.client_ca_file.as_ref().map(|f| home.join(f))),
            redirect_http: match &file.tls.redirect_http_bind {
                None => None,
                Some(text) => Some(text.parse().map_err(|_| ConfigError::Value {
                    source_name: CONFIG_FILE.to_string(),
                    field: "tls.redirect_http_bind".to_string(),
                    problem: format!("{text:?} is not an address:port (e.g. \"0.0.0.0:80\")"),
                })?),
            },
        }),
        (None, None) => None,
        (cert, _) => {
            return Err(ConfigError::Value {
                source_name: CONFIG_FILE.to_string(),
                field: if cert.is_some() { "tls.key_file".to_string() } else { "tls.cert_file".to_string() },
                problem: "built-in TLS needs both the certificate and the key (tls.cert_file and tls.key_file, or --tls-cert and --tls-key)".to_string(),
            })
        }
    };
    Ok(ServeSettings {
        verify_limits,
        auth_failures,
        tls,
        operator_keys,
        admin_signature,
        admin_signature_origin,
        supersede_grace,
        home: home.to_path_buf(),
        genesis_file,
        na_key_file,
        na_key_source,
        db_path,
        na_key_id,
        bind,
        proxy_hops,
        readyz_shows_db_path: file.server.readyz_shows_db_path.unwrap_or(true),
        allow_unsigned_genesis: flags.allow_unsigned_genesis || file.server.allow_unsigned_genesis.unwrap_or(false),
        limits,
    })
}

/// The NA database: the flag, else `DB_PATH`, else `[na] db_path` relative to the home, default
/// `HOME/na.db` (`:memory:` stays as is).
pub(crate) fn resolve_db_path(home: &Path, file: &ConfigFile, env: &Env, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).or_else(|| env.get("DB_PATH").map(PathBuf::from)).unwrap_or_else(|| {
        match file.na.db_path.as_deref() {
            Some(":memory:") => PathBuf::from(":memory:"),
            other => home.join(other.unwrap_or("na.db")),
        }
    })
}

/// `[backup]` resolved against the home: the signing key file and the pinned public key (base64 or
/// a key file), as written. Flags of the commands override both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BackupSigningSettings {
    /// `[backup] signing_key`, relative to the home.
    pub signing_key: Option<PathBuf>,
    /// `[backup] signing_public_key`: a key file relative to the home when one exists there,
    /// else the text as written (base64).
    pub signing_public_key: Option<String>,
    /// `[backup] retired_signing_public_keys`, each resolved like `signing_public_key`.
    pub retired_signing_public_keys: Vec<String>,
}

/// Builds [`BackupSigningSettings`] from `gm.toml` in `home`.
pub(crate) fn backup_signing(home: &Path, file: &ConfigFile) -> BackupSigningSettings {
    BackupSigningSettings {
        signing_key: file.backup.signing_key.as_deref().map(|p| home.join(p)),
        signing_public_key: file.backup.signing_public_key.as_deref().map(|k| key_text_in(home, k)),
        retired_signing_public_keys: file
            .backup
            .retired_signing_public_keys
            .iter()
            .flatten()
            .map(|k| key_text_in(home, k))
            .collect(),
    }
}

/// A key setting as written: the path of a key file when one exists there relative to `home`,
/// else the text itself (base64).
fn key_text_in(home: &Path, k: &str) -> String {
    let in_home = home.join(k);
    if in_home.is_file() {
        in_home.display().to_string()
    } else {
        k.to_string()
    }
}

/// The operator keys file: `[na] operator_keys_file` relative to the home, default `operators.json`.
pub(crate) fn operator_keys_file(home: &Path, file: &ConfigFile) -> PathBuf {
    home.join(file.na.operator_keys_file.as_deref().unwrap_or("operators.json"))
}

/// What decided which admin signature versions `gm serve` accepts (`DEVIATIONS.md` D6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSignatureOrigin {
    /// `NA_ADMIN_LEGACY_SIGNATURES=accept|reject`.
    Environment,
    /// `[server] admin_signature` in gm.toml.
    ConfigFile,
    /// The home holds no gm.toml: a deployment configured the upstream way (environment only), so
    /// version 1 stays accepted as upstream 0.16 accepts it and 0.16 operator CLIs keep working.
    UpstreamDefault,
    /// gm.toml exists but does not set `admin_signature`: gm's default, version 2 only.
    GmDefault,
}

impl AdminSignatureOrigin {
    /// Where the setting came from, in words for logs and reports.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            AdminSignatureOrigin::Environment => "NA_ADMIN_LEGACY_SIGNATURES",
            AdminSignatureOrigin::ConfigFile => "[server] admin_signature in gm.toml",
            AdminSignatureOrigin::UpstreamDefault => {
                "the default for a home without gm.toml (upstream-style deployment)"
            }
            AdminSignatureOrigin::GmDefault => "the default for a home with gm.toml",
        }
    }
}

/// Explicit settings win (environment, then gm.toml); otherwise a home without gm.toml keeps
/// upstream 0.16's behaviour (v1 accepted) and a home with one gets gm's safe default (v2 only).
fn resolve_signature_policy(
    file: &ConfigFile,
    env: &Env,
) -> Result<(SignaturePolicy, AdminSignatureOrigin), ConfigError> {
    if let Some(v) = env.get("NA_ADMIN_LEGACY_SIGNATURES") {
        let policy = match v.trim().to_ascii_lowercase().as_str() {
            "accept" => SignaturePolicy::V1AndV2,
            "reject" => SignaturePolicy::V2Only,
            _ => {
                return Err(ConfigError::Value {
                    source_name: "environment variable NA_ADMIN_LEGACY_SIGNATURES".to_string(),
                    field: "NA_ADMIN_LEGACY_SIGNATURES".to_string(),
                    problem: format!("{v:?} is neither accept nor reject"),
                })
            }
        };
        return Ok((policy, AdminSignatureOrigin::Environment));
    }
    match file.server.admin_signature.as_deref() {
        Some("v2") => Ok((SignaturePolicy::V2Only, AdminSignatureOrigin::ConfigFile)),
        Some("v1+v2") => Ok((SignaturePolicy::V1AndV2, AdminSignatureOrigin::ConfigFile)),
        Some(other) => Err(ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.admin_signature".to_string(),
            problem: format!("{other:?} is neither \"v2\" nor \"v1+v2\""),
        }),
        None if file.present => Ok((SignaturePolicy::V2Only, AdminSignatureOrigin::GmDefault)),
        None => Ok((SignaturePolicy::V1AndV2, AdminSignatureOrigin::UpstreamDefault)),
    }
}

fn resolve_bind(file: &ConfigFile, env: &Env, flags: &ServeFlags) -> Result<SocketAddr, ConfigError> {
    if let Some(b) = flags.bind {
        return Ok(b);
    }
    let mut bind: SocketAddr = match &file.server.bind {
        Some(text) => text.parse().map_err(|_| ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.bind".to_string(),
            problem: format!("{text:?} is not an address like 127.0.0.1:8443"),
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8443)),
    };
    if let Some(port) = env.get("PORT") {
        bind.set_port(parse_env_number("PORT", port)?);
    }
    Ok(bind)
}

fn resolve_limits(file: &ConfigFile, env: &Env, proxy_hops: usize) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    let l = &file.server.limits;
    let secs = |v: Option<u64>, d: Duration| v.map(Duration::from_secs).unwrap_or(d);
    limits.max_head_bytes = l.max_head_bytes.unwrap_or(limits.max_head_bytes);
    limits.max_body_bytes = l.max_body_bytes.unwrap_or(limits.max_body_bytes);
    limits.max_connections = l.max_connections.unwrap_or(limits.max_connections);
    limits.head_timeout = secs(l.head_timeout_seconds, limits.head_timeout);
    limits.body_timeout = secs(l.body_timeout_seconds, limits.body_timeout);
    limits.keep_alive_idle = secs(l.keep_alive_seconds, limits.keep_alive_idle);
    if let Some(v) = env.get("NA_MAX_REQUEST_BYTES") {
        limits.max_body_bytes = parse_env_number("NA_MAX_REQUEST_BYTES", v)?;
    }
    if limits.max_connections == 0 || limits.max_head_bytes < 256 {
        return Err(ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.limits".to_string(),
            problem: "max_connections must be at least 1 and max_head_bytes at least 256".to_string(),
        });
    }
    // Behind a proxy the TCP peer is the proxy: a per-address share would cap the whole NA.
    let share = if proxy_hops > 0 { limits.max_connections } else { (limits.max_connections / 4).max(1) };
    limits.max_connections_per_address = match l.max_connections_per_address {
        Some(0) => {
            return Err(ConfigError::Value {
                source_name: CONFIG_FILE.to_string(),
                field: "server.limits.max_connections_per_address".to_string(),
                problem: "must be at least 1".to_string(),
            })
        }
        Some(n) => n.min(limits.max_connections),
        None => share,
    };
    Ok(limits)
}

fn resolve_verify_limits(file: &ConfigFile) -> Result<VerifyLimits, ConfigError> {
    let (l, d) = (&file.server.limits, VerifyLimits::default());
    let v = VerifyLimits {
        max_signatures: l.verify_max_signatures.unwrap_or(d.max_signatures),
        max_public_keys: l.verify_max_public_keys.unwrap_or(d.max_public_keys),
        max_signature_checks: l.verify_max_signature_checks.unwrap_or(d.max_signature_checks),
    };
    if v.max_signatures == 0 || v.max_public_keys == 0 || v.max_signature_checks == 0 {
        return Err(ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.limits".to_string(),
            problem: "verify_max_signatures, verify_max_public_keys and verify_max_signature_checks must be at least 1"
                .to_string(),
        });
    }
    Ok(v)
}

fn resolve_auth_failures(file: &ConfigFile) -> Result<AuthFailureLimits, ConfigError> {
    let (l, d) = (&file.server.limits, AuthFailureLimits::default());
    let a = AuthFailureLimits {
        per_address: l.node_auth_failures_per_address.unwrap_or(d.per_address),
        per_key: l.node_auth_failures_per_key.unwrap_or(d.per_key),
        audit_burst: l.auth_failure_audit_burst.unwrap_or(d.audit_burst),
        audit_window: l.auth_failure_audit_window_seconds.map_or(d.audit_window, Duration::from_secs),
    };
    if a.per_address == 0 || a.per_key == 0 || a.audit_window.is_zero() {
        return Err(ConfigError::Value {
            source_name: CONFIG_FILE.to_string(),
            field: "server.limits".to_string(),
            problem: "node_auth_failures_per_address, node_auth_failures_per_key and auth_failure_audit_window_seconds must be at least 1".to_string(),
        });
    }
    Ok(a)
}

fn parse_env_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Value {
        source_name: format!("environment variable {name}"),
        field: name.to_string(),
        problem: format!("{value:?} is not a non-negative whole number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_destinations_are_validated_and_name_the_setting() {
        let parse = |t: &str| ConfigFile::parse(t).unwrap();
        let ok = parse(
            "[[backup.destinations]]\nname = \"offsite\"\nurl = \"s3://gm-b/acme/\"\ncredentials_file = \"s3.env\"\n\
             [backup.destinations.object_lock]\nmode = \"compliance\"\ndays = 30\n",
        );
        let d = backup_destinations(Path::new("/etc/gm"), &ok).unwrap();
        assert_eq!(d[0].url.to_string(), "s3://gm-b/acme");
        assert_eq!(d[0].credentials, crate::ops::destination::CredentialSource::File("/etc/gm/s3.env".into()));
        assert_eq!(d[0].lock.map(|l| l.days), Some(30));
        for (text, field) in [
            ("name = \"Off site\"\nurl = \"s3://gm-b\"", "destinations[0].name"),
            ("name = \"a\"\nurl = \"/tmp/x\"", "destinations[0].url"),
            ("name = \"a\"\nurl = \"s3://gm-b\"\ncredentials_file = \"f\"\ncredential = \"c\"", "credential"),
            ("name = \"a\"\nurl = \"s3://gm-b\"\ncredential = \"../x\"", "credential"),
            (
                "name = \"a\"\nurl = \"s3://gm-b\"\n[backup.destinations.object_lock]\nmode = \"legal\"\ndays = 1",
                "object_lock.mode",
            ),
            (
                "name = \"a\"\nurl = \"s3://gm-b\"\n[backup.destinations.object_lock]\nmode = \"governance\"\ndays = 0",
                "object_lock.days",
            ),
        ] {
            let e = backup_destinations(Path::new("/h"), &parse(&format!("[[backup.destinations]]\n{text}\n")))
                .unwrap_err();
            assert!(e.to_string().contains(field), "{text}: {e}");
        }
        let twice = parse("[[backup.destinations]]\nname = \"a\"\nurl = \"s3://gm-b\"\n[[backup.destinations]]\nname = \"a\"\nurl = \"s3://gm-c\"\n");
        assert!(backup_destinations(Path::new("/h"), &twice).unwrap_err().to_string().contains("declared twice"));
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = ConfigFile::parse(
            "[na]\ndb_path = \"file.db\"\nna_key_id = \"from-file\"\n[server]\nbind = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let env = Env::from_pairs(&[("DB_PATH", "/tmp/env.db"), ("PORT", "9100")]);
        let flags = ServeFlags { na_key_id: Some("from-flag".into()), ..Default::default() };
        let s = serve_settings(Path::new("/home/gm"), &file, &env, &flags).unwrap();
        assert_eq!(s.db_path, PathBuf::from("/tmp/env.db"));
        assert_eq!(s.na_key_id, "from-flag");
        assert_eq!(s.bind, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(s.genesis_file, PathBuf::from("/home/gm/genesis.signed.json"));
    }

    fn policy(toml: Option<&str>, env: &[(&str, &str)]) -> (SignaturePolicy, AdminSignatureOrigin) {
        let file = toml.map(|t| ConfigFile::parse(t).unwrap()).unwrap_or_default();
        let s = serve_settings(Path::new("/x"), &file, &Env::from_pairs(env), &ServeFlags::default()).unwrap();
        (s.admin_signature, s.admin_signature_origin)
    }

    // F5: a home gm configured accepts v2 only unless told otherwise; a home without gm.toml (the
    // upstream way) keeps upstream 0.16's v1; explicit settings always win, the environment first.
    #[test]
    fn admin_signature_defaults_to_v2_with_gm_toml_and_v1_and_v2_without() {
        use AdminSignatureOrigin::*;
        use SignaturePolicy::*;
        assert_eq!(policy(Some("[na]\n"), &[]), (V2Only, GmDefault));
        assert_eq!(policy(Some(""), &[]), (V2Only, GmDefault));
        assert_eq!(policy(None, &[]), (V1AndV2, UpstreamDefault));
        assert_eq!(policy(None, &[("GENESIS_FILE", "/g.json")]), (V1AndV2, UpstreamDefault));
        assert_eq!(policy(Some("[server]\nadmin_signature = \"v1+v2\"\n"), &[]), (V1AndV2, ConfigFile));
        assert_eq!(policy(None, &[("NA_ADMIN_LEGACY_SIGNATURES", "reject")]), (V2Only, Environment));
        let explicit_v2 = Some("[server]\nadmin_signature = \"v2\"\n");
        assert_eq!(policy(explicit_v2, &[("NA_ADMIN_LEGACY_SIGNATURES", "accept")]), (V1AndV2, Environment));
        let err = serve_settings(
            Path::new("/x"),
            &file::ConfigFile::parse("[server]\nadmin_signature = \"v1\"\n").unwrap(),
            &Env::default(),
            &ServeFlags::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("server.admin_signature"), "{err}");
    }

    #[test]
    fn bad_port_names_the_variable() {
        let env = Env::from_pairs(&[("PORT", "eighty")]);
        let err = serve_settings(Path::new("/x"), &ConfigFile::default(), &env, &ServeFlags::default()).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
    }

    #[test]
    fn per_address_share_defaults_to_a_quarter_of_the_cap_or_the_cap_behind_a_proxy() {
        let env = Env::from_pairs(&[]);
        let direct = ConfigFile::parse("[server.limits]\nmax_connections = 1000\n").unwrap();
        assert_eq!(resolve_limits(&direct, &env, 0).unwrap().max_connections_per_address, 250);
        assert_eq!(resolve_limits(&direct, &env, 1).unwrap().max_connections_per_address, 1000);
        assert_eq!(resolve_limits(&ConfigFile::default(), &env, 0).unwrap().max_connections_per_address, 1024);
        let set = ConfigFile::parse("[server.limits]\nmax_connections_per_address = 10\n").unwrap();
        assert_eq!(resolve_limits(&set, &env, 1).unwrap().max_connections_per_address, 10);
        let zero = ConfigFile::parse("[server.limits]\nmax_connections_per_address = 0\n").unwrap();
        let err = resolve_limits(&zero, &env, 0).unwrap_err().to_string();
        assert!(err.contains("max_connections_per_address"), "{err}");
    }
}
