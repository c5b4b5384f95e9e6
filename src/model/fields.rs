//! Field readers with pydantic's lax coercion, shared by every model (`na-wire.md` §3.2 step 1):
//! unknown fields are ignored, an integer field accepts `"5"` and `5.0`, a datetime field accepts ISO
//! strings and Unix numbers, strings are never coerced from numbers, and an explicit `null` is only
//! accepted by optional fields.

use crate::json::{Map, Value};

use super::error::ModelError;
use super::timestamp::ModelTime;
use super::Signature;

/// Reads the fields of one JSON object on behalf of `model`; `prefix` names nested objects.
pub(crate) struct Fields<'a> {
    model: &'static str,
    prefix: String,
    map: &'a Map,
}

impl<'a> Fields<'a> {
    /// Reads `value`, which must be a JSON object.
    pub(crate) fn of(model: &'static str, value: &'a Value) -> Result<Fields<'a>, ModelError> {
        Fields::nested(model, String::new(), value)
    }

    fn nested(model: &'static str, prefix: String, value: &'a Value) -> Result<Fields<'a>, ModelError> {
        match value {
            Value::Object(map) => Ok(Fields { model, prefix, map }),
            other => Err(ModelError::new(model, prefix, format!("expected an object, found {}", other.type_name()))),
        }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn fail(&self, name: &str, problem: impl Into<String>) -> ModelError {
        ModelError::new(self.model, self.path(name), problem)
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    fn required(&self, name: &str) -> Result<&'a Value, ModelError> {
        self.present(name).ok_or_else(|| self.fail(name, "field required"))
    }

    /// A nested object field (required).
    pub(crate) fn object(&self, name: &str) -> Result<Fields<'a>, ModelError> {
        Fields::nested(self.model, self.path(name), self.required(name)?)
    }

    /// A nested object field that defaults to `{}` when absent.
    pub(crate) fn object_or_empty(&self, name: &str) -> Result<Option<Fields<'a>>, ModelError> {
        match self.present(name) {
            None => Ok(None),
            Some(v) => Fields::nested(self.model, self.path(name), v).map(Some),
        }
    }

    /// A required string.
    pub(crate) fn str(&self, name: &str) -> Result<String, ModelError> {
        self.as_string(name, self.required(name)?)
    }

    /// A string with a default.
    pub(crate) fn str_or(&self, name: &str, default: &str) -> Result<String, ModelError> {
        match self.present(name) {
            None => Ok(default.to_string()),
            Some(v) => self.as_string(name, v),
        }
    }

    /// An optional string: absent or `null` is `None`.
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<String>, ModelError> {
        match self.present(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.as_string(name, v).map(Some),
        }
    }

    fn as_string(&self, name: &str, v: &Value) -> Result<String, ModelError> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            other => Err(self.fail(name, format!("expected a string, found {}", other.type_name()))),
        }
    }

    /// A required integer.
    pub(crate) fn int(&self, name: &str) -> Result<i64, ModelError> {
        let v = self.required(name)?;
        coerce_int(v).ok_or_else(|| self.fail(name, "expected an integer"))
    }

    /// An integer with a default.
    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, ModelError> {
        match self.present(name) {
            None => Ok(default),
            Some(v) => coerce_int(v).ok_or_else(|| self.fail(name, "expected an integer")),
        }
    }

    /// A list of strings with a default.
    pub(crate) fn str_list_or(&self, name: &str, default: &[&str]) -> Result<Vec<String>, ModelError> {
        match self.present(name) {
            None => Ok(default.iter().map(|s| s.to_string()).collect()),
            Some(v) => self.str_list_value(name, v),
        }
    }

    /// A required list of strings.
    pub(crate) fn str_list(&self, name: &str) -> Result<Vec<String>, ModelError> {
        self.str_list_value(name, self.required(name)?)
    }

    fn str_list_value(&self, name: &str, v: &Value) -> Result<Vec<String>, ModelError> {
        let items = v.as_array().ok_or_else(|| self.fail(name, "expected a list of strings"))?;
        items.iter().enumerate().map(|(i, item)| self.as_string(&format!("{name}.{i}"), item)).collect()
    }

    /// A list of integers with a default.
    pub(crate) fn int_list_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>, ModelError> {
        match self.present(name) {
            None => Ok(default.to_vec()),
            Some(v) => {
                let items = v.as_array().ok_or_else(|| self.fail(name, "expected a list of integers"))?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        coerce_int(item).ok_or_else(|| self.fail(&format!("{name}.{i}"), "expected an integer"))
                    })
                    .collect()
            }
        }
    }

    /// A required datetime.
    pub(crate) fn time(&self, name: &str) -> Result<ModelTime, ModelError> {
        ModelTime::from_value(self.required(name)?).map_err(|e| self.fail(name, e.problem))
    }

    /// A free-form object (`claims`, `metadata`), defaulting to `{}`.
    pub(crate) fn dict_or_empty(&self, name: &str) -> Result<Map, ModelError> {
        match self.present(name) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(self.fail(name, format!("expected an object, found {}", other.type_name()))),
        }
    }

    /// A list of nested objects (default `[]`), each read by `read`.
    pub(crate) fn list_of<T>(
        &self,
        name: &str,
        read: impl Fn(&Fields<'a>) -> Result<T, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        let Some(v) = self.present(name) else {
            return Ok(Vec::new());
        };
        let items = v.as_array().ok_or_else(|| self.fail(name, "expected a list"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| read(&Fields::nested(self.model, self.path(&format!("{name}.{i}")), item)?))
            .collect()
    }

    /// The `signatures` envelope (default `[]`).
    pub(crate) fn signatures(&self) -> Result<Vec<Signature>, ModelError> {
        self.list_of("signatures", |f| Ok(Signature { key_id: f.str("key_id")?, sig: f.str("sig")? }))
    }

    /// A string restricted to `allowed` values.
    pub(crate) fn enum_or(&self, name: &str, allowed: &[&str], default: &str) -> Result<String, ModelError> {
        let s = self.str_or(name, default)?;
        if allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(self.fail(name, format!("must be one of {}", allowed.join(", "))))
        }
    }

    /// Fails `name` with `problem` (for cross-field validation in the models).
    pub(crate) fn invalid(&self, name: &str, problem: &str) -> ModelError {
        self.fail(name, problem)
    }
}

/// Pydantic's lax integer coercion: integers (within i64), integral floats, decimal strings
/// (surrounding whitespace allowed) and booleans.
pub(crate) fn coerce_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => i.as_i64(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
        Value::Str(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return None;
            }
            t.replace('_', "").parse().ok()
        }
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// Builds an insertion-ordered object from `(name, value)` pairs: the declaration-order rendering
/// used for the `*_json` DB columns.
pub(crate) fn object(pairs: Vec<(&str, Value)>) -> Map {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A list of strings as a JSON array.
pub(crate) fn str_array(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::Str(s.clone())).collect())
}

/// An optional string as a JSON string or `null`.
pub(crate) fn opt_str_value(s: &Option<String>) -> Value {
    match s {
        Some(s) => Value::Str(s.clone()),
        None => Value::Null,
    }
}

/// A datetime in the pydantic rendering.
pub(crate) fn time_value(t: &ModelTime) -> Value {
    Value::Str(t.render_pydantic())
}
