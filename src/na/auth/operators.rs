//! The operator public keys admin requests are checked against: `OPERATOR_PUBLIC_KEYS_JSON`
//! (upstream's variable, read once) or the keys file (`HOME/operators.json`, same JSON object
//! `{"<key id>": "<base64 public key>"}`). The file is re-read whenever it changes (checked on every
//! admin request, so a retired key fails on the very next request) and on SIGHUP, without dropping
//! connections. A file that stops parsing keeps the previous keys and logs an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::crypto::json::{parse_str, Value};
use crate::crypto::keys::PublicKey;

/// Key id → public key.
pub type KeySet = BTreeMap<String, PublicKey>;

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `OPERATOR_PUBLIC_KEYS_JSON` (fixed for the process lifetime, as upstream).
    Inline(String),
    /// A keys file, reloaded on change.
    File(PathBuf),
}

/// Why a key set could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError {
    /// Where the keys came from.
    pub source: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid operator keys in {}: {}", self.source, self.problem)
    }
}

impl std::error::Error for KeySetError {}

/// Parses `{"<key id>": "<base64 32-byte key>"}`.
pub fn parse_key_set(text: &str) -> Result<KeySet, String> {
    if text.trim().is_empty() {
        return Ok(KeySet::new());
    }
    let value = parse_str(text).map_err(|e| e.to_string())?;
    let map = value.as_object().ok_or("expected a JSON object {\"key id\": \"base64 public key\"}")?;
    let mut keys = KeySet::new();
    for (id, v) in map.iter() {
        let text = v.as_str().ok_or_else(|| format!("key {id:?}: expected a base64 string"))?;
        let key = PublicKey::from_b64(text).map_err(|e| format!("key {id:?}: {e}"))?;
        if id.trim().is_empty() {
            return Err("a key id must not be empty".to_string());
        }
        keys.insert(id.to_string(), key);
    }
    Ok(keys)
}

/// Renders a key set as the keys file (and `OPERATOR_PUBLIC_KEYS_JSON`) format, sorted by id.
pub fn render_key_set(keys: &KeySet) -> String {
    let map: crate::crypto::json::Map = keys.iter().map(|(k, v)| (k.clone(), Value::from(v.to_b64()))).collect();
    let mut text =
        crate::crypto::canonical::to_string_with(&Value::Object(map), &crate::crypto::canonical::Style::PYTHON_DEFAULT);
    text.push('\n');
    text
}

/// The live key set.
#[derive(Debug)]
pub struct OperatorKeys {
    source: Option<KeySource>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    keys: Arc<KeySet>,
    stamp: Option<(SystemTime, u64)>,
}

impl OperatorKeys {
    /// No operator keys: every admin request fails with 401 (upstream's default).
    pub fn none() -> OperatorKeys {
        OperatorKeys { source: None, state: Mutex::new(Loaded { keys: Arc::new(KeySet::new()), stamp: None }) }
    }

    /// Loads keys from `source`; a missing keys file is an empty set.
    pub fn load(source: KeySource) -> Result<OperatorKeys, KeySetError> {
        let (keys, stamp) = read_source(&source)?;
        Ok(OperatorKeys { source: Some(source), state: Mutex::new(Loaded { keys: Arc::new(keys), stamp }) })
    }

    /// The current keys, re-reading the file first if it changed.
    pub fn current(&self) -> Arc<KeySet> {
        if let Some(KeySource::File(path)) = &self.source {
            let stamp = file_stamp(path);
            let changed = {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.stamp != stamp
            };
            if changed {
                let _ = self.reload();
            }
        }
        Arc::clone(&self.state.lock().unwrap_or_else(|p| p.into_inner()).keys)
    }

    /// Re-reads the source (SIGHUP). On error the previous keys stay in force.
    pub fn reload(&self) -> Result<usize, KeySetError> {
        let Some(source) = &self.source else {
            return Ok(0);
        };
        match read_source(source) {
            Ok((keys, stamp)) => {
                let n = keys.len();
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let ids: Vec<&String> = keys.keys().collect();
                log::info!(target: "gm::operators", "operator keys loaded: {} key(s): {ids:?}", n);
                state.keys = Arc::new(keys);
                state.stamp = stamp;
                Ok(n)
            }
            Err(e) => {
                log::error!(target: "gm::operators", "{e}; keeping the previous operator keys");
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.stamp = match source {
                    KeySource::File(p) => file_stamp(p),
                    KeySource::Inline(_) => None,
                };
                Err(e)
            }
        }
    }

    /// A description of the source for logs and reports.
    pub fn describe(&self) -> String {
        match &self.source {
            None => "none".to_string(),
            Some(KeySource::Inline(_)) => "OPERATOR_PUBLIC_KEYS_JSON".to_string(),
            Some(KeySource::File(p)) => p.display().to_string(),
        }
    }
}

fn read_source(source: &KeySource) -> Result<(KeySet, Option<(SystemTime, u64)>), KeySetError> {
    match source {
        KeySource::Inline(text) => parse_key_set(text)
            .map(|k| (k, None))
            .map_err(|problem| KeySetError { source: "OPERATOR_PUBLIC_KEYS_JSON".to_string(), problem }),
        KeySource::File(path) => {
            let stamp = file_stamp(path);
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(KeySetError { source: path.display().to_string(), problem: e.to_string() }),
            };
            parse_key_set(&text)
                .map(|k| (k, stamp))
                .map_err(|problem| KeySetError { source: path.display().to_string(), problem })
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
