//! The strict JSON parser ([`parse`], [`parse_str`]) producing [`Value`]s.
//!
//! Parsing follows Python's `json.loads` in strict mode so that integers of any size, floats and
//! object key order survive exactly as the Python server sees them. Deliberate deviations from
//! Python: `NaN`/`Infinity`/`-Infinity` tokens, floats that overflow to infinity and lone UTF-16
//! surrogate escapes are rejected, a leading byte-order mark is rejected, and nesting depth is
//! limited by [`ParseLimits`].
//!
//! It must not serialize values (that is `json/write.rs`), must not perform I/O, and must never
//! panic, whatever bytes it is given. Part of the `json` leaf: imports nothing else in gm.

use std::fmt;

use super::value::{Int, Map, ObjectBuilder, Value};

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
