//! The `gm.toml` file format. Unknown keys are rejected so a typo never silently falls back to a
//! default.

use serde::Deserialize;

/// The parsed `gm.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[na]`.
    #[serde(default)]
    pub na: NaSection,
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
}

/// `[na]`: where the trust material and database live. Paths are relative to the gm home.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaSection {
    /// Signed genesis. Defaults to `genesis.signed.json`.
    pub genesis_file: Option<String>,
    /// NA private key. Defaults to `keys/na.key`.
    pub na_private_key_file: Option<String>,
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
    /// Show the DB path in `/readyz`. Defaults to true.
    pub readyz_shows_db_path: Option<bool>,
    /// Serve an unsigned genesis (development only). Defaults to false.
    pub allow_unsigned_genesis: Option<bool>,
    /// Admin signature versions accepted: `"v1+v2"` or `"v2"` (D6). Defaults to `"v1+v2"`.
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
    /// Seconds for a whole request head. Defaults to 10.
    pub head_timeout_seconds: Option<u64>,
    /// Seconds for a whole body. Defaults to 30.
    pub body_timeout_seconds: Option<u64>,
    /// Idle keep-alive seconds. Defaults to 15.
    pub keep_alive_seconds: Option<u64>,
}

impl ConfigFile {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| e.message().to_string() + &location(text, e.span()))
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
