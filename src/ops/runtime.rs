//! The running server's own account of itself (`gm-runtime.json` beside the NA database): which
//! process serves, since when, how it got its NA signatures (key file, systemd credential or remote
//! signer, with fingerprints) and its effective settings. `gm serve` writes it at start (0600, like
//! everything in the home; no secret in it) and removes it at a clean stop; `gm readiness` reads it, so the custody check
//! compares the profile with what is true of the running system rather than with a configured path.
//! It must not hold key material, tokens or anything a reader could misuse.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format tag.
pub(crate) const FORMAT: &str = "gm-runtime/1";

/// The record's file name, in the state folder beside the ops ledger.
pub(crate) const FILE_NAME: &str = "gm-runtime.json";

/// The record's file beside the NA database `db_path` (the ops ledger's folder).
pub(crate) fn path_beside(db_path: &Path) -> PathBuf {
    super::ledger::path_beside(db_path).with_file_name(FILE_NAME)
}

/// How the running NA signs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFacts {
    /// `file`, `credential` or `remote-signer`.
    pub source: String,
    /// The key file or credential file loaded (absent for a remote signer).
    #[serde(default)]
    pub path: Option<String>,
    /// What named the key file (`--na-key`, `NA_PRIVATE_KEY_FILE`, `gm.toml ...`, `the default`),
    /// or the credential name.
    #[serde(default)]
    pub origin: Option<String>,
    /// The private address the remote signer dials.
    #[serde(default)]
    pub signer_listen: Option<String>,
    /// Fingerprint of the NA host key the signer pins.
    #[serde(default)]
    pub host_key_fingerprint: Option<String>,
    /// Fingerprint of the key that signs (the genesis NA key, held by the signer or loaded here).
    pub signing_key_fingerprint: String,
}

/// Built-in TLS in effect (`[tls]`, `--tls-cert`/`--tls-key`): the files, never their contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFacts {
    /// The certificate chain file (PEM, leaf first) the server loaded and reloads.
    pub cert_file: String,
    /// The private key file.
    pub key_file: String,
    /// CA certificates whose client certificates the operator-only surface requires.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// The plain-HTTP listener that redirects to HTTPS.
    #[serde(default)]
    pub redirect_http_bind: Option<String>,
}

/// Settings in effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsFacts {
    /// The genesis file served.
    pub genesis_file: String,
    /// The NA database.
    pub db_path: String,
    /// The public listen address.
    pub bind: String,
    /// `v2` or `v1+v2`.
    pub admin_signatures: String,
    /// Trusted proxy hops.
    pub proxy_hops: usize,
    /// Whether the built-in scheduler runs the jobs.
    pub scheduler: bool,
    /// How many jobs are scheduled.
    pub jobs: usize,
    /// Built-in TLS, when the server speaks HTTPS itself (`None`: plain HTTP; absent in records of
    /// a gm before built-in TLS, which served plain HTTP only).
    #[serde(default)]
    pub tls: Option<TlsFacts>,
}

/// `gm-runtime.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeRecord {
    /// [`FORMAT`].
    pub format: String,
    /// The serving process.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// gm's version.
    pub version: String,
    /// How it signs.
    pub na_key: KeyFacts,
    /// What it runs with.
    pub settings: SettingsFacts,
}

impl RuntimeRecord {
    /// Writes the record atomically (0600) to `path`.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        text.push('\n');
        crate::files::atomic::write_atomic(path, text.as_bytes(), crate::files::atomic::Mode::Private, true)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads the record at `path`.
    pub(crate) fn read(path: &Path) -> Result<RuntimeRecord, String> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{} does not exist: no gm serve is running on this database", path.display())
            }
            _ => format!("cannot read {}: {e}", path.display()),
        })?;
        let record: RuntimeRecord =
            serde_json::from_str(&text).map_err(|e| format!("{} is not a gm runtime record: {e}", path.display()))?;
        if record.format != FORMAT {
            return Err(format!("{} has format {:?}, not {FORMAT}", path.display(), record.format));
        }
        Ok(record)
    }

    /// True when the recorded process is alive and is a gm (Linux: `/proc/PID/exe` names a file
    /// called `gm`, or `/proc/PID/comm` says so); false for a stale record.
    pub(crate) fn process_alive(&self) -> bool {
        gm_process_alive(self.pid)
    }
}

/// True when process `pid` is alive and is a gm (`/proc/PID/comm` is `gm` or `gm-…`).
pub(crate) fn gm_process_alive(pid: u32) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return false;
    }
    let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    comm.trim() == "gm" || comm.trim().starts_with("gm-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_foreign_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("gm-runtime-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_beside(&dir.join("na.db"));
        let record = RuntimeRecord {
            format: FORMAT.into(),
            pid: std::process::id(),
            started_at: "2026-12-05T00:00:00Z".into(),
            version: "0.1.0".into(),
            na_key: KeyFacts {
                source: "remote-signer".into(),
                path: None,
                origin: None,
                signer_listen: Some("127.0.0.1:8444".into()),
                host_key_fingerprint: Some("00".into()),
                signing_key_fingerprint: "11".into(),
            },
            settings: SettingsFacts {
                genesis_file: "g".into(),
                db_path: "d".into(),
                bind: "127.0.0.1:8443".into(),
                admin_signatures: "v2".into(),
                proxy_hops: 0,
                scheduler: true,
                jobs: 5,
                tls: Some(TlsFacts {
                    cert_file: "/etc/gm/tls/fullchain.pem".into(),
                    key_file: "/etc/gm/tls/privkey.pem".into(),
                    client_ca_file: None,
                    redirect_http_bind: Some("0.0.0.0:80".into()),
                }),
            },
        };
        record.write(&path).unwrap();
        assert_eq!(RuntimeRecord::read(&path).unwrap(), record);
        // A record of a gm before built-in TLS (no `tls`) still reads, as plain HTTP.
        let mut older = serde_json::to_value(&record).unwrap();
        older["settings"].as_object_mut().unwrap().remove("tls");
        std::fs::write(&path, older.to_string()).unwrap();
        assert_eq!(RuntimeRecord::read(&path).unwrap().settings.tls, None);
        std::fs::write(&path, "{\"format\":\"other\"}").unwrap();
        assert!(RuntimeRecord::read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(RuntimeRecord::read(&path).unwrap_err().contains("no gm serve is running"));
    }
}
