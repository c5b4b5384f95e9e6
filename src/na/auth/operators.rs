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

use crate::crypto::keys::PublicKey;
use crate::json::{parse_str, Value};

/// Key id → public key.
pub(crate) type KeySet = BTreeMap<String, PublicKey>;

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
    let map: crate::json::Map = keys.iter().map(|(k, v)| (k.clone(), Value::from(v.to_b64()))).collect();
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
    /// Loads keys from `source`; a missing keys file is an empty set.
    pub fn load(source: KeySource) -> Result<OperatorKeys, KeySetError> {
        let (keys, stamp) = read_source(&source)?;
        Ok(OperatorKeys { source: Some(source), state: Mutex::new(Loaded { keys: Arc::new(keys), stamp }) })
    }

    /// The current keys, re-reading the file first if it changed.
    pub(crate) fn current(&self) -> Arc<KeySet> {
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
    ///
    /// A keys file caught mid-write (empty, or changed while it was read: an editor or a shell `>`
    /// truncates before it writes) is not a key set: the previous keys stay and the file is read
    /// again on the next admin request, instead of every admin request failing with 401 until the
    /// next change. An empty key set is written `{}`.
    pub(crate) fn reload(&self) -> Result<usize, KeySetError> {
        let Some(source) = &self.source else {
            return Ok(0);
        };
        let KeySource::File(path) = source else {
            return self.apply(source, read_source(source));
        };
        let before = file_stamp(path);
        let settled = if before.is_some_and(|(_, len)| len == 0) {
            Err("the file is empty (a write in progress? an empty key set is written {})")
        } else {
            let read = read_source(source);
            if file_stamp(path) == before {
                Ok(read)
            } else {
                Err("the file changed while it was read")
            }
        };
        match settled {
            Ok(read) => self.apply(source, read),
            Err(problem) => {
                log::warn!(target: "gm::operators", "{}: {problem}; keeping the previous operator keys and reading it again on the next admin request", path.display());
                self.state.lock().unwrap_or_else(|p| p.into_inner()).stamp = None;
                Err(KeySetError { source: path.display().to_string(), problem: problem.to_string() })
            }
        }
    }

    /// Installs a freshly read key set, or logs why it could not be read and keeps the old one.
    fn apply(
        &self,
        source: &KeySource,
        read: Result<(KeySet, Option<(SystemTime, u64)>), KeySetError>,
    ) -> Result<usize, KeySetError> {
        match read {
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
    pub(crate) fn describe(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SigningKey;

    // A keys file caught between an editor's truncation and its write used to parse as an empty key
    // set: every admin request got 401 until the file changed again (seen as a flaky integration
    // test under load). Now the previous keys stay and the file is read again on the next request.
    #[test]
    fn a_keys_file_caught_mid_write_keeps_the_previous_keys_until_it_settles() {
        let dir = std::env::temp_dir().join(format!("gm-operators-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("operators.json");
        let key = |k: &SigningKey| k.public_key().to_b64();
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        std::fs::write(&path, format!("{{\"a\": \"{}\"}}", key(&a))).unwrap();
        let keys = OperatorKeys::load(KeySource::File(path.clone())).unwrap();
        assert!(keys.current().contains_key("a"));

        std::fs::write(&path, "").unwrap();
        let err = keys.reload().unwrap_err();
        assert!(err.problem.contains("the file is empty"), "{err}");
        assert!(keys.current().contains_key("a"), "the previous keys stay while the file is empty");

        std::fs::write(&path, format!("{{\"b\": \"{}\"}}", key(&b))).unwrap();
        let now = keys.current();
        assert!(now.contains_key("b") && !now.contains_key("a"), "the settled file is read on the next request");

        std::fs::write(&path, "{}").unwrap();
        assert!(keys.current().is_empty(), "{{}} is an empty key set");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
