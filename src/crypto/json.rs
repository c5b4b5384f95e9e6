//! JSON value model and strict parser for the signing protocol.
//!
//! This module owns the in-memory JSON value model ([`Value`], [`Int`], [`Map`]) and
//! the parser ([`parse`], [`parse_str`]). Parsing follows Python's `json.loads` in
//! strict mode so that integers of any size, floats and object key order survive
//! exactly as the Python server sees them. Deliberate deviations from Python:
//! `NaN`/`Infinity`/`-Infinity` tokens, floats that overflow to infinity and lone
//! UTF-16 surrogate escapes are rejected, a leading byte-order mark is rejected, and
//! nesting depth is limited by [`ParseLimits`].
//!
//! This module must not serialize values (that belongs to `canonical`), must not
//! perform I/O, and must never panic, whatever bytes it is given.

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
    pub fn from_i64(n: i64) -> Self {
        Int { repr: n.to_string() }
    }

    /// Parses an optional `-` followed by one or more ASCII digits, normalizing
    /// leading zeros and negative zero; returns `None` for anything else.
    pub fn from_decimal_str(s: &str) -> Option<Self> {
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
    pub fn as_u64(&self) -> Option<u64> {
        self.repr.parse().ok()
    }

    /// Returns `true` if the value is strictly less than zero.
    pub fn is_negative(&self) -> bool {
        self.repr.starts_with('-')
    }

    /// Returns `true` if the value is zero.
    pub fn is_zero(&self) -> bool {
        self.repr == "0"
    }

    /// Returns the normalized decimal representation.
    pub fn as_str(&self) -> &str {
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
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns `true` if the map has no entries.
    pub fn is_empty(&self) -> bool {
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
    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
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
struct ObjectBuilder {
    entries: Vec<(String, Value)>,
    index: Option<HashMap<String, usize>>,
}

impl ObjectBuilder {
    fn new() -> Self {
        ObjectBuilder { entries: Vec::new(), index: None }
    }

    fn insert(&mut self, key: String, value: Value) {
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

    fn finish(self) -> Map {
        Map { entries: self.entries }
    }
}

/// A JSON value as produced by [`parse`], preserving the integer/float distinction.
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
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
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
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Returns the boolean if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Returns the integer if this is an integer.
    pub fn as_int(&self) -> Option<&Int> {
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
    pub fn type_name(&self) -> &'static str {
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

/// Resource limits applied while parsing.
///
/// `max_depth` is the maximum number of nested arrays/objects; a top-level array
/// counts as depth 1. Parsing itself is iterative, but dropping, comparing and
/// serializing a [`Value`] recurse once per level, so keep the limit modest (a few
/// thousand at most). Defaults to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Maximum nesting depth of arrays and objects.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_depth: 64 }
    }
}

/// Why a document was rejected. Offsets are byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The input ended before the value was complete.
    UnexpectedEnd,
    /// A character that cannot appear at this position.
    UnexpectedChar {
        /// Byte offset of the character.
        offset: usize,
        /// The offending character.
        found: char,
    },
    /// A number that does not follow the JSON grammar (e.g. `01`, `1.`, `-`).
    InvalidNumber {
        /// Byte offset of the start of the number.
        offset: usize,
    },
    /// A float that overflows to infinity (e.g. `1E400`).
    NumberOutOfRange {
        /// Byte offset of the start of the number.
        offset: usize,
    },
    /// A `NaN`, `Infinity` or `-Infinity` token.
    NonStandardToken {
        /// Byte offset of the token.
        offset: usize,
    },
    /// A `\u` escape of a UTF-16 surrogate that is not part of a valid pair.
    LoneSurrogate {
        /// Byte offset of the backslash of the escape.
        offset: usize,
    },
    /// A raw character U+0000..U+001F inside a string.
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
    },
    /// An unknown escape or a malformed `\u` escape.
    InvalidEscape {
        /// Byte offset of the backslash of the escape.
        offset: usize,
    },
    /// Arrays/objects nested deeper than the configured limit.
    TooDeep {
        /// The limit that was exceeded.
        max_depth: usize,
    },
    /// Non-whitespace data after the top-level value.
    TrailingData {
        /// Byte offset of the first extra byte.
        offset: usize,
    },
    /// The input is not valid UTF-8.
    InvalidUtf8,
}

impl ParseError {
    /// Returns the byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            ParseError::UnexpectedChar { offset, .. }
            | ParseError::InvalidNumber { offset }
            | ParseError::NumberOutOfRange { offset }
            | ParseError::NonStandardToken { offset }
            | ParseError::LoneSurrogate { offset }
            | ParseError::ControlCharacter { offset }
            | ParseError::InvalidEscape { offset }
            | ParseError::TrailingData { offset } => Some(*offset),
            ParseError::UnexpectedEnd | ParseError::TooDeep { .. } | ParseError::InvalidUtf8 => None,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnexpectedEnd => f.write_str("invalid JSON: unexpected end of input"),
            ParseError::UnexpectedChar { offset, found } => {
                write!(f, "invalid JSON at byte {offset}: unexpected character {found:?}")
            }
            ParseError::InvalidNumber { offset } => {
                write!(f, "invalid JSON at byte {offset}: invalid number")
            }
            ParseError::NumberOutOfRange { offset } => {
                write!(f, "invalid JSON at byte {offset}: number out of range")
            }
            ParseError::NonStandardToken { offset } => {
                write!(f, "invalid JSON at byte {offset}: NaN and Infinity are not allowed")
            }
            ParseError::LoneSurrogate { offset } => {
                write!(f, "invalid JSON at byte {offset}: lone surrogate escape")
            }
            ParseError::ControlCharacter { offset } => {
                write!(f, "invalid JSON at byte {offset}: unescaped control character in string")
            }
            ParseError::InvalidEscape { offset } => {
                write!(f, "invalid JSON at byte {offset}: invalid escape sequence")
            }
            ParseError::TooDeep { max_depth } => {
                write!(f, "invalid JSON: nesting deeper than {max_depth} levels")
            }
            ParseError::TrailingData { offset } => {
                write!(f, "invalid JSON at byte {offset}: extra data after value")
            }
            ParseError::InvalidUtf8 => f.write_str("invalid JSON: input is not valid UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON document from `input` with Python `json.loads` strict semantics
/// (plus the deviations listed in the module docs), enforcing `limits`.
pub fn parse(input: &[u8], limits: &ParseLimits) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(input).map_err(|_| ParseError::InvalidUtf8)?;
    let mut parser = Parser { text, bytes: input, pos: 0 };
    parser.parse_document(limits.max_depth)
}

/// Parses one JSON document from `input` with the default [`ParseLimits`].
pub fn parse_str(input: &str) -> Result<Value, ParseError> {
    parse(input.as_bytes(), &ParseLimits::default())
}

/// A container whose contents are still being parsed.
enum Frame {
    Array(Vec<Value>),
    /// An object and the key whose value is being parsed.
    Object(ObjectBuilder, String),
}

/// Iterative parser state; `pos` is always on a UTF-8 character boundary when an
/// error is reported.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(offset).copied()
    }

    fn advance(&mut self, count: usize) {
        self.pos = self.pos.saturating_add(count);
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.advance(1);
        }
    }

    /// Error describing whatever is found at `offset`.
    fn unexpected_at(&self, offset: usize) -> ParseError {
        if offset >= self.bytes.len() {
            return ParseError::UnexpectedEnd;
        }
        let found = self.text.get(offset..).and_then(|s| s.chars().next()).unwrap_or(char::REPLACEMENT_CHARACTER);
        ParseError::UnexpectedChar { offset, found }
    }

    fn unexpected(&self) -> ParseError {
        self.unexpected_at(self.pos)
    }

    fn parse_document(&mut self, max_depth: usize) -> Result<Value, ParseError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_whitespace();
            let mut value = match self.peek() {
                None => return Err(ParseError::UnexpectedEnd),
                Some(b'[') => {
                    if stack.len() >= max_depth {
                        return Err(ParseError::TooDeep { max_depth });
                    }
                    self.advance(1);
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.advance(1);
                        Value::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    if stack.len() >= max_depth {
                        return Err(ParseError::TooDeep { max_depth });
                    }
                    self.advance(1);
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b'}') => {
                            self.advance(1);
                            Value::Object(Map::new())
                        }
                        Some(b'"') => {
                            let key = self.parse_key()?;
                            stack.push(Frame::Object(ObjectBuilder::new(), key));
                            continue 'value;
                        }
                        _ => return Err(self.unexpected()),
                    }
                }
                Some(b'"') => Value::Str(self.parse_string()?),
                Some(b't') => {
                    self.expect_literal(b"true")?;
                    Value::Bool(true)
                }
                Some(b'f') => {
                    self.expect_literal(b"false")?;
                    Value::Bool(false)
                }
                Some(b'n') => {
                    self.expect_literal(b"null")?;
                    Value::Null
                }
                Some(b'N' | b'I') => {
                    let rest = self.rest();
                    if rest.starts_with(b"NaN") || rest.starts_with(b"Infinity") {
                        return Err(ParseError::NonStandardToken { offset: self.pos });
                    }
                    return Err(self.unexpected());
                }
                Some(b'-' | b'0'..=b'9') => self.parse_number()?,
                Some(_) => return Err(self.unexpected()),
            };
            // A complete value: hand it to the enclosing containers, closing as many
            // of them as the input closes.
            loop {
                let Some(frame) = stack.pop() else {
                    self.skip_whitespace();
                    if self.pos < self.bytes.len() {
                        return Err(ParseError::TrailingData { offset: self.pos });
                    }
                    return Ok(value);
                };
                match frame {
                    Frame::Array(mut items) => {
                        items.push(value);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.advance(1);
                                stack.push(Frame::Array(items));
                                continue 'value;
                            }
                            Some(b']') => {
                                self.advance(1);
                                value = Value::Array(items);
                            }
                            _ => return Err(self.unexpected()),
                        }
                    }
                    Frame::Object(mut builder, key) => {
                        builder.insert(key, value);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.advance(1);
                                self.skip_whitespace();
                                if self.peek() != Some(b'"') {
                                    return Err(self.unexpected());
                                }
                                let key = self.parse_key()?;
                                stack.push(Frame::Object(builder, key));
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.advance(1);
                                value = Value::Object(builder.finish());
                            }
                            _ => return Err(self.unexpected()),
                        }
                    }
                }
            }
        }
    }

    /// Parses `"key"` followed by optional whitespace and `:`.
    fn parse_key(&mut self) -> Result<String, ParseError> {
        let key = self.parse_string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.unexpected());
        }
        self.advance(1);
        Ok(key)
    }

    fn expect_literal(&mut self, literal: &[u8]) -> Result<(), ParseError> {
        for (i, &expected) in literal.iter().enumerate() {
            let offset = self.pos.saturating_add(i);
            match self.byte_at(offset) {
                Some(b) if b == expected => {}
                _ => return Err(self.unexpected_at(offset)),
            }
        }
        self.advance(literal.len());
        Ok(())
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.advance(1);
        }
    }

    /// Requires at least one digit at the current position, then skips all digits.
    fn require_digits(&mut self, start: usize) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.skip_digits();
                Ok(())
            }
            _ => Err(ParseError::InvalidNumber { offset: start }),
        }
    }

    fn parse_number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.advance(1);
        }
        match self.peek() {
            Some(b'0') => {
                self.advance(1);
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(ParseError::InvalidNumber { offset: start });
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            Some(b'I') if self.rest().starts_with(b"Infinity") => {
                return Err(ParseError::NonStandardToken { offset: start });
            }
            _ => return Err(ParseError::InvalidNumber { offset: start }),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.advance(1);
            self.require_digits(start)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.advance(1);
            if let Some(b'+' | b'-') = self.peek() {
                self.advance(1);
            }
            self.require_digits(start)?;
        }
        let text = self.text.get(start..self.pos).ok_or(ParseError::InvalidNumber { offset: start })?;
        if !is_float {
            return Int::from_decimal_str(text).map(Value::Int).ok_or(ParseError::InvalidNumber { offset: start });
        }
        let f: f64 = text.parse().map_err(|_| ParseError::InvalidNumber { offset: start })?;
        if !f.is_finite() {
            return Err(ParseError::NumberOutOfRange { offset: start });
        }
        Ok(Value::Float(f))
    }

    /// Parses a string starting at the opening quote.
    fn parse_string(&mut self) -> Result<String, ParseError> {
        self.advance(1);
        let mut out = String::new();
        loop {
            let segment_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.advance(1);
            }
            // Stops only at ASCII bytes or the end, so both ends are char boundaries.
            let segment = self.text.get(segment_start..self.pos).ok_or(ParseError::InvalidUtf8)?;
            out.push_str(segment);
            match self.peek() {
                None => return Err(ParseError::UnexpectedEnd),
                Some(b'"') => {
                    self.advance(1);
                    return Ok(out);
                }
                Some(b'\\') => self.parse_escape(&mut out)?,
                Some(_) => return Err(ParseError::ControlCharacter { offset: self.pos }),
            }
        }
    }

    /// Parses one escape sequence starting at the backslash and appends its char.
    fn parse_escape(&mut self, out: &mut String) -> Result<(), ParseError> {
        let escape_start = self.pos;
        let simple = match self.byte_at(escape_start.saturating_add(1)) {
            None => return Err(ParseError::UnexpectedEnd),
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4(escape_start)?;
                self.advance(6);
                let c = match unit {
                    0xD800..=0xDBFF => self.low_surrogate(escape_start, unit)?,
                    0xDC00..=0xDFFF => {
                        return Err(ParseError::LoneSurrogate { offset: escape_start });
                    }
                    _ => char::from_u32(unit).ok_or(ParseError::InvalidEscape { offset: escape_start })?,
                };
                out.push(c);
                return Ok(());
            }
            Some(_) => {
                return Err(ParseError::InvalidEscape { offset: escape_start });
            }
        };
        out.push(simple);
        self.advance(2);
        Ok(())
    }

    /// After a high surrogate escape (already consumed), requires a low surrogate
    /// escape at the current position and returns the combined char.
    fn low_surrogate(&mut self, high_start: usize, high: u32) -> Result<char, ParseError> {
        let lone = ParseError::LoneSurrogate { offset: high_start };
        let low_start = self.pos;
        match (self.byte_at(low_start), self.byte_at(low_start.saturating_add(1))) {
            (None, _) => return Err(ParseError::UnexpectedEnd),
            (Some(b'\\'), Some(b'u')) => {}
            _ => return Err(lone),
        }
        let low = self.hex4(low_start)?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return Err(lone);
        }
        self.advance(6);
        let scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        char::from_u32(scalar).ok_or(lone)
    }

    /// Reads the four hex digits of a `\uXXXX` escape whose backslash is at
    /// `escape_start`.
    fn hex4(&self, escape_start: usize) -> Result<u32, ParseError> {
        let mut unit: u32 = 0;
        for i in 2..6 {
            let digit = match self.byte_at(escape_start.saturating_add(i)) {
                None => return Err(ParseError::UnexpectedEnd),
                Some(b) => char::from(b).to_digit(16).ok_or(ParseError::InvalidEscape { offset: escape_start })?,
            };
            unit = (unit << 4) | digit;
        }
        Ok(unit)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Value {
        parse_str(text).unwrap()
    }

    fn int(text: &str) -> Value {
        Value::Int(Int::from_decimal_str(text).unwrap())
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_ok("null"), Value::Null);
        assert_eq!(parse_ok(" true "), Value::Bool(true));
        assert_eq!(parse_ok("\t\r\nfalse\n"), Value::Bool(false));
        assert_eq!(parse_ok("\"hi\""), Value::Str("hi".into()));
        assert_eq!(parse_ok("0"), int("0"));
        assert_eq!(parse_ok("-0"), int("0"));
        assert_eq!(parse_ok("-0").as_int().unwrap().as_str(), "0");
        assert_eq!(parse_ok("-42"), Value::from(-42i64));
        match parse_ok("-0.0") {
            Value::Float(f) => assert!(f == 0.0 && f.is_sign_negative()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(parse_ok("1.5"), Value::Float(1.5));
        assert_eq!(parse_ok("1e2"), Value::Float(100.0));
        assert_eq!(parse_ok("1E-2"), Value::Float(0.01));
        assert_eq!(parse_ok("1e+2"), Value::Float(100.0));
        assert_eq!(parse_ok("1e-400"), Value::Float(0.0));
    }

    #[test]
    fn big_integers_are_exact() {
        let v = parse_ok("123456789012345678901234567890");
        assert_eq!(v.as_int().unwrap().as_str(), "123456789012345678901234567890");
        assert_eq!(v.as_i64(), None);
        let v = parse_ok("-9223372036854775808");
        assert_eq!(v.as_i64(), Some(i64::MIN));
        let v = parse_ok("18446744073709551615");
        assert_eq!(v.as_int().unwrap().as_u64(), Some(u64::MAX));
        assert_eq!(v.as_i64(), None);
        assert!(parse_ok("-5").as_int().unwrap().is_negative());
        assert!(!parse_ok("0").as_int().unwrap().is_negative());
    }

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
    fn strings_and_escapes() {
        assert_eq!(parse_ok(r#""\"\\\/\b\f\n\r\t""#), Value::Str("\"\\/\u{8}\u{c}\n\r\t".into()));
        assert_eq!(parse_ok(r#""\u00e9\u00E9""#), Value::Str("éé".into()));
        assert_eq!(parse_ok(r#""\ud83d\ude00""#), Value::Str("😀".into()));
        assert_eq!(parse_ok(r#""\uD834\uDD1E""#), Value::Str("𝄞".into()));
        assert_eq!(parse_ok("\"😀é\u{7f}\""), Value::Str("😀é\u{7f}".into()));
        assert_eq!(parse_ok(r#""\u0000""#), Value::Str("\0".into()));
    }

    #[test]
    fn errors() {
        let err = |t: &str| parse_str(t).unwrap_err();
        assert_eq!(err(r#"{"s": "\ud800x"}"#), ParseError::LoneSurrogate { offset: 7 });
        assert!(matches!(err(r#""\udc00""#), ParseError::LoneSurrogate { .. }));
        assert!(matches!(err(r#""\ud800\u0041""#), ParseError::LoneSurrogate { .. }));
        assert!(matches!(err(r#""\ud800\ud800""#), ParseError::LoneSurrogate { .. }));
        assert_eq!(err(r#"{"n": NaN}"#), ParseError::NonStandardToken { offset: 6 });
        assert!(matches!(err("Infinity"), ParseError::NonStandardToken { offset: 0 }));
        assert!(matches!(err("[-Infinity]"), ParseError::NonStandardToken { offset: 1 }));
        assert_eq!(err(r#"{"big": 1E400}"#), ParseError::NumberOutOfRange { offset: 8 });
        assert!(matches!(err("-1e400"), ParseError::NumberOutOfRange { .. }));
        assert_eq!(err("[1,]"), ParseError::UnexpectedChar { offset: 3, found: ']' });
        assert_eq!(err(r#"{"a" 1}"#), ParseError::UnexpectedChar { offset: 5, found: '1' });
        assert_eq!(err("01"), ParseError::InvalidNumber { offset: 0 });
        assert_eq!(err("-01"), ParseError::InvalidNumber { offset: 0 });
        assert_eq!(err(r#""\x""#), ParseError::InvalidEscape { offset: 1 });
        assert_eq!(err(r#""\u12G4""#), ParseError::InvalidEscape { offset: 1 });
        assert_eq!(err("\"a\tb\""), ParseError::ControlCharacter { offset: 2 });
        assert_eq!(err("\"a\nb\""), ParseError::ControlCharacter { offset: 2 });
        for bad in [
            "",
            " ",
            "+1",
            ".5",
            "5.",
            "1.e5",
            "1e",
            "1e+",
            "-",
            "--1",
            "[1 2]",
            "{,}",
            "{\"a\":1,}",
            "[",
            "]",
            "{",
            "}",
            "tru",
            "nul",
            "falsy",
            "'a'",
            "{a:1}",
            "\"abc",
            "[1]]",
            "1 2",
            "\u{feff}1",
            "\u{a0}1",
            "\u{b}1",
            "{\"a\":1 \"b\":2}",
            "[,1]",
            "{\"a\"}",
        ] {
            assert!(parse_str(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(err("1 x"), ParseError::TrailingData { offset: 2 });
        assert_eq!(err("[1"), ParseError::UnexpectedEnd);
        assert_eq!(parse(b"\"\xff\"", &ParseLimits::default()), Err(ParseError::InvalidUtf8));
    }

    #[test]
    fn error_display() {
        let e = ParseError::UnexpectedChar { offset: 12, found: 'x' };
        assert_eq!(e.to_string(), "invalid JSON at byte 12: unexpected character 'x'");
        assert_eq!(e.offset(), Some(12));
        assert_eq!(ParseError::TooDeep { max_depth: 64 }.to_string(), "invalid JSON: nesting deeper than 64 levels");
        let all = [
            ParseError::UnexpectedEnd,
            e,
            ParseError::InvalidNumber { offset: 1 },
            ParseError::NumberOutOfRange { offset: 1 },
            ParseError::NonStandardToken { offset: 1 },
            ParseError::LoneSurrogate { offset: 1 },
            ParseError::ControlCharacter { offset: 1 },
            ParseError::InvalidEscape { offset: 1 },
            ParseError::TooDeep { max_depth: 1 },
            ParseError::TrailingData { offset: 1 },
            ParseError::InvalidUtf8,
        ];
        for e in all {
            let s = e.to_string();
            assert!(s.starts_with("invalid JSON"), "{s}");
            assert!(!s.ends_with('.'), "{s}");
        }
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_str(&nested(64)).is_ok());
        assert_eq!(parse_str(&nested(65)), Err(ParseError::TooDeep { max_depth: 64 }));
        assert_eq!(parse_str(&nested(100)), Err(ParseError::TooDeep { max_depth: 64 }));
        let objects = format!("{}1{}", "{\"a\":".repeat(64), "}".repeat(64));
        assert!(parse_str(&objects).is_ok());
        let objects = format!("{}1{}", "{\"a\":".repeat(65), "}".repeat(65));
        assert!(matches!(parse_str(&objects), Err(ParseError::TooDeep { .. })));
        let zero = ParseLimits { max_depth: 0 };
        assert!(parse(b"1", &zero).is_ok());
        assert!(parse(b"[]", &zero).is_err());
        let huge = "[".repeat(1_000_000);
        assert!(parse_str(&huge).is_err());
        let generous = ParseLimits { max_depth: 2_000 };
        assert!(parse(nested(2_000).as_bytes(), &generous).is_ok());
    }

    #[test]
    fn duplicate_keys_last_wins_in_place() {
        let v = parse_ok(r#"{"a": 1, "b": 2, "a": 3}"#);
        let map = v.as_object().unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(map.get("a"), Some(&Value::from(3i64)));
    }

    #[test]
    fn many_keys_use_index_and_keep_semantics() {
        let mut text = String::from("{");
        for i in 0..200 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        for i in 0..200 {
            text.push_str(&format!("\"k{i}\":{},", i * 2));
        }
        text.push_str("\"k5\":\"last\"}");
        let v = parse_ok(&text);
        let map = v.as_object().unwrap();
        assert_eq!(map.len(), 200);
        let keys: Vec<&str> = map.keys().collect();
        assert_eq!(keys.first(), Some(&"k0"));
        assert_eq!(keys.get(199), Some(&"k199"));
        assert_eq!(map.get("k7"), Some(&Value::from(14i64)));
        assert_eq!(map.get("k5"), Some(&Value::from("last")));

        let dup_heavy = format!("{{{}\"x\":0}}", "\"x\":1,".repeat(50_000));
        let v = parse_ok(&dup_heavy);
        assert_eq!(v.as_object().unwrap().len(), 1);
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

    #[test]
    fn value_helpers() {
        assert_eq!(Value::Null.type_name(), "null");
        assert_eq!(Value::Bool(true).type_name(), "bool");
        assert_eq!(Value::from(1i64).type_name(), "int");
        assert_eq!(Value::Float(1.0).type_name(), "float");
        assert_eq!(Value::from("s").type_name(), "string");
        assert_eq!(Value::from(vec![]).type_name(), "array");
        assert_eq!(Value::from(Map::new()).type_name(), "object");

        for falsy in ["null", "false", "0", "-0", "0.0", "-0.0", "\"\"", "[]", "{}"] {
            assert!(!parse_ok(falsy).is_truthy(), "{falsy}");
        }
        for truthy in ["true", "1", "-1", "0.5", "\"0\"", "[0]", "{\"a\":null}"] {
            assert!(parse_ok(truthy).is_truthy(), "{truthy}");
        }
        assert!(Value::Float(f64::NAN).is_truthy());

        let v = parse_ok(r#"{"a": [1, "x", true, null]}"#);
        let items = v.as_object().unwrap().get("a").unwrap().as_array().unwrap();
        assert_eq!(items.first().unwrap().as_i64(), Some(1));
        assert_eq!(items.get(1).unwrap().as_str(), Some("x"));
        assert_eq!(items.get(2).unwrap().as_bool(), Some(true));
        assert!(items.get(3).unwrap().is_null());
        assert_eq!(Value::from(String::from("s")).as_str(), Some("s"));
        assert!(Value::Null.as_object().is_none());
        assert!(Value::Null.as_array().is_none());
        assert!(Value::Null.as_bool().is_none());
        assert!(Value::Null.as_str().is_none());
        assert_ne!(Value::from(1i64), Value::Float(1.0));
    }

    /// Small deterministic PRNG for the robustness tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const DOCUMENTS: &[&str] = &[
        r#"{"b": 1, "a": {"d": [3, 2, 1], "c": null}, "A": true}"#,
        r#"{"a": 48.0, "e": 1E-7, "f": -1.0e+2, "p": 12345678901234567890.0, "z": -0}"#,
        r#"{"s": "\u0000\ud83d\ude00\"\\\/\b\f\n\r\t é😀", "t": [true, false, null, []]}"#,
        r#"[[[{"x": [1, {"y": {}}]}]], "", 0, -0.5e-3]"#,
    ];

    #[test]
    fn never_panics_on_prefixes() {
        for doc in DOCUMENTS {
            assert!(parse_str(doc).is_ok(), "{doc}");
            let bytes = doc.as_bytes();
            for end in 0..bytes.len() {
                let prefix = bytes.get(..end).unwrap();
                let _ = parse(prefix, &ParseLimits::default());
                let _ = parse(prefix, &ParseLimits { max_depth: 2 });
            }
        }
    }

    #[test]
    fn never_panics_on_random_input() {
        const ALPHABET: &[u8] =
            b"{}[]\",:0123456789-+.eE truefalsnulNaIfiy\\u/bfnrtdD\t\n\r\x00\x1f\x7f\xc3\xa9\xf0\x9f\x98\x80\xff";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..30_000 {
            let len = rng.below(48);
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                if rng.below(10) == 0 {
                    input.push(rng.next() as u8);
                } else {
                    input.push(*ALPHABET.get(rng.below(ALPHABET.len())).unwrap());
                }
            }
            let _ = parse(&input, &ParseLimits::default());
            let _ = parse(&input, &ParseLimits { max_depth: 1 });
        }
        for _ in 0..20_000 {
            let doc = DOCUMENTS.get(rng.below(DOCUMENTS.len())).unwrap();
            let mut input = doc.as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(input.len() + 1);
                match rng.below(3) {
                    0 if at < input.len() => {
                        input.remove(at);
                    }
                    1 if at < input.len() => {
                        *input.get_mut(at).unwrap() = *ALPHABET.get(rng.below(ALPHABET.len())).unwrap();
                    }
                    _ => input.insert(at, rng.next() as u8),
                }
            }
            let _ = parse(&input, &ParseLimits::default());
        }
    }
}
