//! The `gm.toml` file format. Unknown keys are rejected so a typo never silently falls back to a
//! default.

use serde::Deserialize;

/// The parsed `gm.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// True when the text came from a file; false for the defaults used when the home holds no
    /// gm.toml (a deployment configured the upstream way, by environment only).
    #[serde(skip)]
    pub present: bool,
    /// `[na]`.
    #[serde(default)]
    pub na: NaSection,
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[cron]` and its `[cron.jobs.NAME]` tables.
    #[serde(default)]
    pub cron: CronSection,
    /// `[backup]`: the backup-signing key and limits on reading backup archives.
    #[serde(default)]
    pub backup: BackupSection,
    /// `[signer]`: the remote signer of the customer-held custody model.
    #[serde(default)]
    pub signer: SignerSection,
    /// `[tls]`: built-in HTTPS.
    #[serde(default)]
    pub tls: TlsSection,
}

/// `[tls]`: `gm serve` speaks HTTPS itself (no proxy in front). Both files or neither.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain (PEM, leaf first), relative to the home. Defaults to none: plain HTTP.
    /// Reloaded on SIGHUP and when the file changes (a certificate that does not load keeps the old one).
    pub cert_file: Option<String>,
    /// The private key (PEM), relative to the home, mode 0600 or stricter. Defaults to none.
    pub key_file: Option<String>,
    /// CA certificates (PEM) whose client certificates the operator-only surface (admin routes,
    /// `/metrics`) requires, relative to the home. Defaults to none: no client certificate asked.
    pub client_ca_file: Option<String>,
    /// Also listen here for plain HTTP and answer every request with a permanent redirect (308) to
    /// the same path over HTTPS (e.g. `0.0.0.0:80`). Defaults to none.
    pub redirect_http_bind: Option<String>,
}

/// `[signer]`: under customer-held custody the NA runs without its key; the customer's
/// `gm signer run` dials this address and signs through it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSection {
    /// The private address the remote signer dials (e.g. `10.0.0.5:8444`; never the public port).
    /// Setting it makes `gm serve` run without an NA key. Defaults to none (the key is loaded).
    pub listen: Option<String>,
    /// The NA host key the signer pins, relative to the home; created on first start. Defaults to
    /// `keys/na-host.key`.
    pub host_key_file: Option<String>,
}

/// `[backup]`: who signs backups, which key verify, restore, restore-drill and prune trust, and
/// bounds on what verify, restore and restore-drill may unpack from an archive.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// The backup-signing private key (`gm keygen backup-signing`), on the host that takes
    /// backups, relative to the home. Defaults to none: `gm managed backup` then refuses unless
    /// `--allow-unsigned`.
    pub signing_key: Option<String>,
    /// The pinned backup-signing public key: base64, or a `.pub` file relative to the home.
    /// Defaults to the public half of `signing_key` when that is set, so a verify or drill host
    /// needs only this.
    pub signing_public_key: Option<String>,
    /// Backup-signing public keys replaced by a rotation (base64, or `.pub` files relative to the
    /// home): backups they signed still verify, restore and count for retention. Defaults to none.
    pub retired_signing_public_keys: Option<Vec<String>>,
    /// Largest total of unpacked bytes per archive. Defaults to 68719476736 (64 GiB).
    pub max_unpacked_bytes: Option<u64>,
    /// Largest ratio of unpacked to compressed bytes, enforced past the first 64 MiB. Defaults to 100.
    pub max_expansion_ratio: Option<u64>,
    /// `[[backup.destinations]]`: S3-compatible object storage backups may go to (`--to NAME`)
    /// and be read from. Defaults to none.
    #[serde(default)]
    pub destinations: Vec<DestinationSection>,
}

/// `[[backup.destinations]]`: one S3-compatible bucket and prefix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    /// The name `--to` takes: 1 to 32 of `a-z`, `0-9` and `-`, unique. Required.
    pub name: String,
    /// `s3://bucket/prefix`. Required.
    pub url: String,
    /// The endpoint URL (`https://…`). Defaults to `AWS_ENDPOINT_URL`, else
    /// `https://s3.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The signing region. Defaults to `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`). Defaults to true unless the endpoint is
    /// `*.amazonaws.com`.
    pub path_style: Option<bool>,
    /// A `KEY=VALUE` file with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally
    /// `AWS_SESSION_TOKEN`, relative to the home, mode 0600 or stricter. Defaults to none.
    pub credentials_file: Option<String>,
    /// The name of a systemd credential in the same format (`LoadCredential=`). Defaults to none;
    /// with neither, the `AWS_*` environment variables are used.
    pub credential: Option<String>,
    /// `[backup.destinations.object_lock]`: retention set on every upload. Defaults to none.
    pub object_lock: Option<ObjectLockSection>,
}

/// `[backup.destinations.object_lock]`: S3 Object Lock retention (the bucket must have Object
/// Lock enabled).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLockSection {
    /// `governance` or `compliance`. Required.
    pub mode: String,
    /// Days from the upload, 1 to 36500. Required.
    pub days: u32,
}

/// `[cron]`: the built-in scheduler.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronSection {
    /// Run the scheduler inside `gm serve`. Defaults to true when jobs are declared.
    pub enabled: Option<bool>,
    /// Seconds `gm serve` / `gm cron run` wait for running jobs at shutdown. Defaults to 60.
    pub shutdown_grace_seconds: Option<u64>,
    /// `[cron.jobs.NAME]`, one table per job.
    #[serde(default)]
    pub jobs: std::collections::BTreeMap<String, JobSection>,
}

/// `[cron.jobs.NAME]`: one job. `kind` decides which options apply; the others are rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// `backup`, `verify`, `restore-drill`, `audit-export`, `audit-prune`, `prune` or `probe`.
    pub kind: String,
    /// Crontab line (5 fields, or 6 with seconds first) or `@hourly`/`@daily`/`@weekly`/`@monthly`.
    pub schedule: String,
    /// Seconds before the run is killed. Defaults per kind (probe 60, others 3600).
    pub timeout_seconds: Option<u64>,
    /// Up to this many seconds of delay after each fire time. Defaults to 0.
    pub jitter_seconds: Option<u64>,
    /// A fire time missed at most this long ago (downtime) runs once at start. Defaults to 3600.
    pub missed_grace_seconds: Option<u64>,
    /// backup, verify, restore-drill, prune: the backup folder, or an `s3://bucket/prefix` (for
    /// backup: objects only, no local copy).
    pub backup_dir: Option<String>,
    /// backup: `[[backup.destinations]]` names (or `s3://` URLs) each backup is also uploaded
    /// to, in the same pass. Defaults to none.
    pub destinations: Option<Vec<String>>,
    /// backup: age recipients file.
    pub recipients_file: Option<String>,
    /// backup, verify, restore-drill: passphrase file (customer-held custody).
    pub passphrase_file: Option<String>,
    /// verify, restore-drill: age identity file.
    pub identity_file: Option<String>,
    /// restore-drill: where the latest drill report is written.
    pub report_file: Option<String>,
    /// audit-export: the folder for `audit-<UTC>.jsonl` files; audit-prune: the folder for the
    /// `audit-pruned-<UTC>.jsonl` export taken before deleting.
    pub export_dir: Option<String>,
    /// audit-export: hours of events per export, ending now. Defaults to 24.
    pub window_hours: Option<u64>,
    /// audit-prune: keep audit events younger than this many days.
    pub max_age_days: Option<u32>,
    /// audit-prune: keep at most this many of the newest audit events.
    pub max_rows: Option<u64>,
    /// prune: keep the newest N.
    pub keep_last: Option<u32>,
    /// prune: keep the newest of each of the last D days.
    pub keep_daily: Option<u32>,
    /// prune: keep the newest of each of the last W ISO weeks.
    pub keep_weekly: Option<u32>,
    /// probe: the NA base URL.
    pub target: Option<String>,
    /// probe: checks, comma-separated. Defaults to all.
    pub checks: Option<String>,
    /// probe: the pinned root public key (base64).
    pub root_public_key: Option<String>,
    /// probe: the consecutive-failure state file.
    pub state_file: Option<String>,
    /// probe: dead-man switch URL, called only when every check passed.
    pub ping_url: Option<String>,
    /// probe: PEM bundle of a private CA, trusted instead of the host's CA roots (`--ca-file`).
    pub ca_file: Option<String>,
}

/// `[na]`: where the trust material and database live. Paths are relative to the gm home.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaSection {
    /// Signed genesis. Defaults to `genesis.signed.json`.
    pub genesis_file: Option<String>,
    /// NA private key. Defaults to `keys/na.key`.
    pub na_private_key_file: Option<String>,
    /// The systemd credential holding the NA private key (`LoadCredentialEncrypted=NAME:...`), read
    /// from `$CREDENTIALS_DIRECTORY/NAME` when that file exists and no key file is given by flag or
    /// `NA_PRIVATE_KEY_FILE`. Defaults to `na-key`.
    pub key_credential: Option<String>,
    /// NA key id label. Defaults to `na-2025-q1`.
    pub na_key_id: Option<String>,
    /// SQLite database. Defaults to `na.db`.
    pub db_path: Option<String>,
    /// Operator public keys file (`{"key id": "base64"}`), reloaded on change and SIGHUP; ignored
    /// when `OPERATOR_PUBLIC_KEYS_JSON` is set. Defaults to `operators.json`.
    pub operator_keys_file: Option<String>,
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address. Defaults to `127.0.0.1:8443`.
    pub bind: Option<String>,
    /// Trusted proxy hops for `X-Forwarded-*`. Defaults to 0.
    pub trusted_proxy_hops: Option<usize>,
    /// Show the DB path in the public views (`/readyz`, `/dashboard.json`, `/dashboard`); `false`
    /// shows `[REDACTED]` in all of them. Defaults to true.
    pub readyz_shows_db_path: Option<bool>,
    /// Serve an unsigned genesis (development only). Defaults to false.
    pub allow_unsigned_genesis: Option<bool>,
    /// Admin signature versions accepted: `"v2"` or `"v1+v2"` (D6). Defaults to `"v2"`; a home
    /// without gm.toml (configured the upstream way) defaults to `"v1+v2"` as upstream 0.16 does.
    pub admin_signature: Option<String>,
    /// Seconds a renewed certificate's predecessor stays usable (D5). Defaults to 3600.
    pub renewal_grace_seconds: Option<u64>,
    /// `[server.limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `[server.limits]`: request limits and timeouts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Request head limit. Defaults to 16384.
    pub max_head_bytes: Option<usize>,
    /// Request body limit. Defaults to 2097152.
    pub max_body_bytes: Option<usize>,
    /// Open connection cap. Defaults to 4096.
    pub max_connections: Option<usize>,
    /// Open connections from one TCP peer address. Defaults to a quarter of `max_connections`, or to
    /// `max_connections` with `trusted_proxy_hops` above 0 (every connection then comes from the proxy).
    pub max_connections_per_address: Option<usize>,
    /// Seconds for a whole request head. Defaults to 10.
    pub head_timeout_seconds: Option<u64>,
    /// Seconds for a whole body. Defaults to 30.
    pub body_timeout_seconds: Option<u64>,
    /// Idle keep-alive seconds. Defaults to 15.
    pub keep_alive_seconds: Option<u64>,
    /// Public verify routes: most signatures on one posted object (G1). Defaults to 16.
    pub verify_max_signatures: Option<usize>,
    /// Public verify routes: most keys in one key list (G1). Defaults to 64.
    pub verify_max_public_keys: Option<usize>,
    /// Public verify routes: most (signature, key) checks per request (G1). Defaults to 256.
    pub verify_max_signature_checks: Option<usize>,
    /// Node-auth failures per client address per minute before 429 (G3). Defaults to 10.
    pub node_auth_failures_per_address: Option<usize>,
    /// Node-auth failures per node key per minute before 429 (G3). Defaults to 10.
    pub node_auth_failures_per_key: Option<usize>,
    /// Identical auth failures audited one row each per window (G3). Defaults to 3.
    pub auth_failure_audit_burst: Option<usize>,
    /// Seconds of the auth-failure collapse window (G3). Defaults to 60.
    pub auth_failure_audit_window_seconds: Option<u64>,
}

impl ConfigFile {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let mut file: ConfigFile =
            toml::from_str(text).map_err(|e| e.message().to_string() + &location(text, e.span()))?;
        file.present = true;
        Ok(file)
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text.get(..r.start).map_or(0, |t| t.matches('\n').count()) + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/config.md is the reference operators read: every key this file accepts is named there
    /// (as `` `key` ``), and its annotated production example parses and builds valid jobs.
    #[test]
    fn docs_config_md_names_every_key_and_its_example_is_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
        let source = std::fs::read_to_string(root.join("src/config/file.rs")).unwrap();
        let code = source.split("#[cfg(test)]").next().unwrap();
        let keys: Vec<&str> = code
            .lines()
            .filter(|l| !l.contains("#[serde(skip)]"))
            .filter_map(|l| l.trim().strip_prefix("pub ")?.split_once(':').map(|(name, _)| name))
            .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .filter(|name| {
                !["present", "na", "server", "cron", "backup", "signer", "tls", "limits", "jobs"].contains(name)
            })
            .collect();
        assert!(keys.len() > 40, "{keys:?}");
        let missing: Vec<&&str> = keys.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
        assert!(missing.is_empty(), "docs/config.md does not name {missing:?}");
        let example = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
        let file = ConfigFile::parse(example).unwrap();
        let settings = crate::config::cron::cron_settings(std::path::Path::new("/etc/gm"), &file).unwrap();
        assert_eq!(settings.jobs.len(), 5);
        let destinations = crate::config::backup_destinations(std::path::Path::new("/etc/gm"), &file).unwrap();
        assert_eq!(destinations.len(), 1);
    }
}
