//! Reading and writing the files commands are given: JSON documents through gm's own parser (so
//! integers, floats and big numbers survive for re-signing), and result files written atomically.

use std::path::Path;

use crate::crypto::canonical::to_pretty_string;
use crate::files::atomic::{write_atomic, Mode};
use crate::json::{parse, ParseLimits, Value};
use crate::model::{ModelError, SignedObject};

use super::error::Error;

/// Largest JSON document a command reads (signed objects are a few KiB).
const MAX_JSON_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and parses a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value, Error> {
    let meta = std::fs::metadata(path).map_err(Error::io("read", path))?;
    if meta.len() > MAX_JSON_FILE_BYTES {
        return Err(Error::Json {
            path: path.to_path_buf(),
            problem: format!("file is larger than {MAX_JSON_FILE_BYTES} bytes"),
        });
    }
    let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
    parse(&bytes, &ParseLimits::default()).map_err(|e| Error::Json { path: path.to_path_buf(), problem: e.to_string() })
}

/// Reads a JSON file through model `T`.
pub(crate) fn read_object<T: SignedObject>(path: &Path) -> Result<T, Error> {
    let value = read_json(path)?;
    T::from_value(&value).map_err(|source: ModelError| Error::Model { path: path.to_path_buf(), source })
}

/// The indented, declaration-ordered file text of an object (as upstream tooling writes it).
pub(crate) fn object_file_text(value: &Value) -> String {
    let mut text = to_pretty_string(value);
    text.push('\n');
    text
}

/// Writes `text` to `path` atomically (mode 0644), refusing to replace an existing file unless `force`.
pub(crate) fn write_public_file(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    write_atomic(path, text.as_bytes(), Mode::Public, force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists { path: path.to_path_buf() }
        } else {
            Error::Io { action: "write", path: path.to_path_buf(), source: e }
        }
    })
}

/// Refuses early when `path` exists and `force` is not set (validate before acting).
pub(crate) fn refuse_existing(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.exists() {
        return Err(Error::Exists { path: path.to_path_buf() });
    }
    Ok(())
}
