//! The in-memory JSON value model: [`Value`], exact integers ([`Int`]) and insertion-ordered
//! objects with Python `dict` semantics ([`Map`]).
//!
//! It must not parse text (that is `json/parse.rs`) or serialize values (`json/write.rs`), must
//! not perform I/O and must never panic. Part of the `json` leaf: imports nothing else in gm.

use std::collections::HashMap;
use std::fmt;

/// An arbitrary-size JSON integer kept exactly as a normalized decimal string.
///
/// The string has no leading zeros, an optional leading `-`, and zero is always
/// `"0"` (never `"-0"`), so two `Int`s are equal exactly when their values are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Int {
    repr: String,
}

impl Int {
    /// Builds an `Int` from a machine integer.
    pub(crate) fn from_i64(n: i64) -> Self {
        Int { repr: n.to_string() }
    }

    /// Parses an optional `-` followed by one or more ASCII digits, normalizing
    /// leading zeros and negative zero; returns `None` for anything else.
    pub(crate) fn from_decimal_str(s: &str) -> Option<Self> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        let repr = if trimmed.is_empty() {
            "0".to_string()
        } else if negative {
            format!("-{trimmed}")
        } else {
            trimmed.to_string()
        };
        Some(Int { repr })
    }

    /// Returns the value as an `i64`, or `None` if it does not fit.
    pub fn as_i64(&self) -> Option<i64> {
        self.repr.parse().ok()
    }

    /// Returns the value as a `u64`, or `None` if it is negative or does not fit.
    #[cfg(test)]
    pub(crate) fn as_u64(&self) -> Option<u64> {
        self.repr.parse().ok()
    }

    /// Returns `true` if the value is strictly less than zero.
    #[cfg(test)]
    pub(crate) fn is_negative(&self) -> bool {
        self.repr.starts_with('-')
    }

    /// Returns `true` if the value is zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.repr == "0"
    }

    /// Returns the normalized decimal representation.
    pub(crate) fn as_str(&self) -> &str {
        &self.repr
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl From<i64> for Int {
    fn from(n: i64) -> Self {
        Int::from_i64(n)
    }
}

impl From<u64> for Int {
    fn from(n: u64) -> Self {
        Int { repr: n.to_string() }
    }
}

impl From<i32> for Int {
    fn from(n: i32) -> Self {
        Int::from_i64(i64::from(n))
    }
}

impl From<usize> for Int {
    fn from(n: usize) -> Self {
        Int { repr: n.to_string() }
    }
}

/// An insertion-ordered JSON object with Python `dict` semantics.
///
/// Keys are unique; inserting an existing key replaces its value in place and keeps
/// the key's original position. Lookups are linear scans (objects are small).
/// Equality ignores order, like Python `dict` equality.
#[derive(Debug, Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// Creates an empty map.
    pub fn new() -> Self {
        Map { entries: Vec::new() }
    }

    /// Returns the value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, value)| value)
    }

    /// Returns a mutable reference to the value stored under `key`, if any.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, value)| value)
    }

    /// Inserts `value` under `key`. An existing key keeps its position and has its
    /// value replaced; the previous value is returned. A new key is appended.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key` and returns its value, keeping the order of the other entries.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Returns `true` if `key` is present.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Returns the number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns `true` if the map has no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(key, value)` pairs in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { inner: self.entries.iter() }
    }

    /// Iterates over keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Iterates over values in insertion order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.entries.iter().all(|(key, value)| other.get(key) == Some(value))
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut builder = ObjectBuilder::new();
        for (key, value) in iter {
            builder.insert(key, value);
        }
        builder.finish()
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Borrowing iterator over a [`Map`]'s entries in insertion order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, (String, Value)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_str(), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Object size above which [`ObjectBuilder`] switches to a hash index.
const INDEX_THRESHOLD: usize = 32;

/// Builds a [`Map`] with "last occurrence wins" semantics without quadratic cost
/// for objects with many keys.
pub(super) struct ObjectBuilder {
    entries: Vec<(String, Value)>,
    index: Option<HashMap<String, usize>>,
}

impl ObjectBuilder {
    pub(super) fn new() -> Self {
        ObjectBuilder { entries: Vec::new(), index: None }
    }

    pub(super) fn insert(&mut self, key: String, value: Value) {
        if let Some(index) = self.index.as_mut() {
            if let Some(&position) = index.get(&key) {
                if let Some(slot) = self.entries.get_mut(position) {
                    slot.1 = value;
                }
                return;
            }
            index.insert(key.clone(), self.entries.len());
            self.entries.push((key, value));
            return;
        }
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return;
        }
        self.entries.push((key, value));
        if self.entries.len() > INDEX_THRESHOLD {
            let index = self.entries.iter().enumerate().map(|(position, (k, _))| (k.clone(), position)).collect();
            self.index = Some(index);
        }
    }

    pub(super) fn finish(self) -> Map {
        Map { entries: self.entries }
    }
}

/// A JSON value as produced by [`parse`](super::parse::parse), preserving the integer/float distinction.
///
/// Equality is structural: `Int(1)` and `Float(1.0)` differ; objects compare
/// without regard to key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A number written without fraction or exponent, kept exactly.
    Int(Int),
    /// A number written with a fraction or exponent; always finite when parsed.
    Float(f64),
    /// A string of Unicode scalar values.
    Str(String),
    /// An ordered list of values.
    Array(Vec<Value>),
    /// An insertion-ordered object.
    Object(Map),
}

impl Value {
    /// Returns the string contents if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Returns the map if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Returns the map mutably if this is an object.
    pub(crate) fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Returns the items if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Returns the items mutably if this is an array.
    pub(crate) fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Returns the boolean if this is a boolean.
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Returns the integer if this is an integer.
    pub(crate) fn as_int(&self) -> Option<&Int> {
        match self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// Returns the integer as an `i64` if this is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_int().and_then(Int::as_i64)
    }

    /// Returns `true` if this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Returns the type name: `"null"`, `"bool"`, `"int"`, `"float"`, `"string"`,
    /// `"array"` or `"object"`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Python truthiness: `null`, `false`, `0`, `0.0`, `""`, `[]` and `{}` are falsy;
    /// everything else (including NaN) is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => !i.is_zero(),
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(Int::from(n))
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(Int::from(n))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(Int::from(n))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Int(Int::from(n))
    }
}

impl From<Int> for Value {
    fn from(n: Int) -> Self {
        Value::Int(n)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Self {
        Value::Object(map)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn int_helpers() {
        assert_eq!(Int::from_decimal_str("007").unwrap().as_str(), "7");
        assert_eq!(Int::from_decimal_str("-000").unwrap().as_str(), "0");
        assert_eq!(Int::from_decimal_str("-0012").unwrap().as_str(), "-12");
        assert!(Int::from_decimal_str("").is_none());
        assert!(Int::from_decimal_str("-").is_none());
        assert!(Int::from_decimal_str("+1").is_none());
        assert!(Int::from_decimal_str("1a").is_none());
        assert_eq!(Int::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Int::from(-3i32).as_i64(), Some(-3));
        assert_eq!(Int::from(7usize).as_str(), "7");
        assert_eq!(Int::from_i64(i64::MIN).as_i64(), Some(i64::MIN));
        assert_eq!(Int::from(5i64), Int::from(5u64));
    }

    #[test]
    fn map_api() {
        let mut map = Map::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("b", 1i64), None);
        assert_eq!(map.insert("a", "x"), None);
        assert_eq!(map.insert("b", true), Some(Value::from(1i64)));
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["b", "a"]);
        assert!(map.contains_key("a"));
        assert!(!map.contains_key("c"));
        assert_eq!(map.len(), 2);
        if let Some(v) = map.get_mut("a") {
            *v = Value::Null;
        }
        assert_eq!(map.get("a"), Some(&Value::Null));
        let pairs: Vec<(&str, &Value)> = map.iter().collect();
        assert_eq!(pairs, vec![("b", &Value::Bool(true)), ("a", &Value::Null)]);
        assert_eq!(map.remove("b"), Some(Value::Bool(true)));
        assert_eq!(map.remove("b"), None);
        assert_eq!(map.len(), 1);

        let collected: Map = vec![
            ("x".to_string(), Value::from(1i64)),
            ("y".to_string(), Value::from(2i64)),
            ("x".to_string(), Value::from(3i64)),
        ]
        .into_iter()
        .collect();
        assert_eq!(collected.keys().collect::<Vec<_>>(), vec!["x", "y"]);
        assert_eq!(collected.get("x"), Some(&Value::from(3i64)));

        let reordered: Map =
            vec![("y".to_string(), Value::from(2i64)), ("x".to_string(), Value::from(3i64))].into_iter().collect();
        assert_eq!(collected, reordered);
        let owned: Vec<(String, Value)> = reordered.into_iter().collect();
        assert_eq!(owned.len(), 2);
    }
}
