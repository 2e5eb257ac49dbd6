//! Python's `json.loads`, as vLLM applies it to a tool call's `arguments`
//! string before the template sees them (`_postprocess_messages`).
//!
//! It accepts more than strict JSON, and keeps more: `NaN`, `Infinity` and
//! `-Infinity` are floats, an integer keeps every digit (`-0` is the
//! integer 0), a number with a fraction or exponent is a float (`1e400` is
//! infinity), and a key given twice keeps its first position with its last
//! value. A document it refuses is a `JSONDecodeError`, which vLLM turns
//! into `{}`, as it does any value that is not an object.
//!
//! Values a template value cannot hold exactly (an integer outside 128
//! bits, a string with a lone UTF-16 surrogate, nesting deeper than
//! [`MAX_DEPTH`]) are parsed on, and only if one of them survives in the
//! object the template receives is the result [`Loads::NotExact`]. Python
//! itself raises (uncaught by vLLM) for an integer of more than 4,300
//! digits and for nesting past its recursion limit (≈ 1,000, depending on
//! the process): those are `NotExact` at once.

use minijinja::Value;

/// Nesting of arrays and objects kept as values; deeper ones are checked
/// for syntax only.
pub const MAX_DEPTH: usize = 128;

/// Nesting past which Python's recursion limit may be reached.
const PYTHON_DEPTH: usize = 900;

/// Digits of an integer past which Python's `int()` refuses it
/// (`sys.get_int_max_str_digits()`, 4,300 by default).
const PYTHON_INT_DIGITS: usize = 4_300;

/// Why a document gave no value.
#[derive(Debug, PartialEq, Eq)]
pub enum Loads {
    /// `json.loads` raises `JSONDecodeError`.
    Invalid,
    /// `json.loads` gives a value this crate cannot reproduce, or fails
    /// otherwise than with `JSONDecodeError`; the reason.
    NotExact(&'static str),
}

/// Parses `text` as Python's `json.loads(text)` does.
pub fn loads(text: &str) -> Result<Value, Loads> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let (v, inexact) = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(Loads::Invalid); // "Extra data"
    }
    match inexact {
        // Anything but an object becomes `{}`: what it held does not matter.
        Some(why) if v.kind() == minijinja::value::ValueKind::Map => Err(Loads::NotExact(why)),
        _ => Ok(v),
    }
}

/// A parsed value and, when it holds something not reproduced exactly, why.
type Parsed = (Value, Option<&'static str>);

const DEEP: &str = "tool call arguments nest deeper than the renderer follows";
const BIG_INT: &str = "a tool call argument is an integer outside 128 bits";
const SURROGATE: &str = "a tool call argument holds a lone UTF-16 surrogate";

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        let ok = self.s[self.i..].starts_with(lit.as_bytes());
        if ok {
            self.i += lit.len();
        }
        ok
    }

    fn value(&mut self, depth: usize) -> Result<Parsed, Loads> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                let (s, exact) = self.string()?;
                Ok((Value::from(s), (!exact).then_some(SURROGATE)))
            }
            Some(b'{') | Some(b'[') if depth >= MAX_DEPTH => {
                self.skip(depth)?;
                Ok((Value::from(()), Some(DEEP)))
            }
            Some(b'{') => {
                self.i += 1;
                self.object(depth + 1)
            }
            Some(b'[') => {
                self.i += 1;
                self.array(depth + 1)
            }
            _ => self.scalar(),
        }
    }

    /// A literal or a number.
    fn scalar(&mut self) -> Result<Parsed, Loads> {
        let v = match self.peek() {
            _ if self.eat("null") => Value::from(()),
            _ if self.eat("true") => Value::from(true),
            _ if self.eat("false") => Value::from(false),
            _ if self.eat("NaN") => Value::from(f64::NAN),
            _ if self.eat("Infinity") => Value::from(f64::INFINITY),
            _ if self.eat("-Infinity") => Value::from(f64::NEG_INFINITY),
            Some(b'-' | b'0'..=b'9') => return self.number(),
            _ => return Err(Loads::Invalid),
        };
        Ok((v, None))
    }

    fn object(&mut self, depth: usize) -> Result<Parsed, Loads> {
        // Python's dict: a repeated key keeps its first position and takes
        // its last value (the map preserves insertion order).
        let mut pairs: Vec<(Value, Parsed)> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        self.ws();
        if !self.eat("}") {
            loop {
                if !self.eat("\"") {
                    return Err(Loads::Invalid);
                }
                let (k, exact) = self.string()?;
                self.ws();
                if !self.eat(":") {
                    return Err(Loads::Invalid);
                }
                self.ws();
                let (v, mut why) = self.value(depth)?;
                if !exact {
                    why = Some(SURROGATE);
                }
                match at.get(&k) {
                    Some(&i) => pairs[i].1 = (v, why),
                    None => {
                        at.insert(k.clone(), pairs.len());
                        pairs.push((Value::from(k), (v, why)));
                    }
                }
                self.ws();
                if self.eat("}") {
                    break;
                }
                if !self.eat(",") {
                    return Err(Loads::Invalid);
                }
                self.ws();
            }
        }
        let why = pairs.iter().find_map(|(_, (_, why))| *why);
        let map = Value::from_iter(pairs.into_iter().map(|(k, (v, _))| (k, v)));
        Ok((map, why))
    }

    fn array(&mut self, depth: usize) -> Result<Parsed, Loads> {
        let mut items = Vec::new();
        let mut why = None;
        self.ws();
        if !self.eat("]") {
            loop {
                self.ws();
                let (v, w) = self.value(depth)?;
                items.push(v);
                why = why.or(w);
                self.ws();
                if self.eat("]") {
                    break;
                }
                if !self.eat(",") {
                    return Err(Loads::Invalid);
                }
            }
        }
        Ok((Value::from(items), why))
    }

    /// Checks the syntax of the array or object at the cursor (at `depth`)
    /// without keeping it: an explicit stack, no recursion.
    fn skip(&mut self, depth: usize) -> Result<(), Loads> {
        // Per open container: whether it is an object.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // At a value.
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    if depth + open.len() >= PYTHON_DEPTH {
                        return Err(Loads::NotExact(
                            "tool call arguments nest near Python's recursion limit",
                        ));
                    }
                    self.i += 1;
                    self.ws();
                    let close = if c == b'{' { "}" } else { "]" };
                    // An empty container is a whole value; else its first
                    // item (after its key) comes next.
                    if !self.eat(close) {
                        open.push(c == b'{');
                        if c == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    self.string()?;
                }
                _ => {
                    self.scalar()?;
                }
            }
            // After a value: close containers, or go on to the next item.
            loop {
                let Some(&is_obj) = open.last() else {
                    return Ok(());
                };
                self.ws();
                if self.eat(if is_obj { "}" } else { "]" }) {
                    open.pop();
                    continue;
                }
                if !self.eat(",") {
                    return Err(Loads::Invalid);
                }
                self.ws();
                if is_obj {
                    self.key()?;
                }
                break;
            }
        }
    }

    /// `"key" :` and the whitespace after it, in an object being skipped.
    fn key(&mut self) -> Result<(), Loads> {
        if !self.eat("\"") {
            return Err(Loads::Invalid);
        }
        self.string()?;
        self.ws();
        if !self.eat(":") {
            return Err(Loads::Invalid);
        }
        self.ws();
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`: an int without a
    /// fraction or exponent, else `float()` of the text.
    fn number(&mut self) -> Result<Parsed, Loads> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - from
        };
        self.eat("-");
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => digits(self),
            _ => return Err(Loads::Invalid),
        };
        // A fraction or exponent without digits is not part of the number
        // (Python's regex leaves it, and the document fails as extra data).
        let mut float = false;
        if self.peek() == Some(b'.') {
            let at = self.i;
            self.i += 1;
            if digits(self) == 0 {
                self.i = at;
            } else {
                float = true;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let at = self.i;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                self.i = at;
            } else {
                float = true;
            }
        }
        // The matched text is ASCII.
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| Loads::Invalid)?;
        if float {
            let f = text.parse::<f64>().map_err(|_| Loads::Invalid)?;
            return Ok((Value::from(f), None));
        }
        if int_digits > PYTHON_INT_DIGITS {
            return Err(Loads::NotExact(
                "a tool call argument is an integer Python refuses to convert",
            ));
        }
        // `-0` is the integer 0.
        let v = if let Ok(n) = text.parse::<i64>() {
            Value::from(n)
        } else if let Ok(n) = text.parse::<i128>() {
            Value::from(n)
        } else if let Ok(n) = text.parse::<u128>() {
            Value::from(n)
        } else {
            return Ok((Value::from(()), Some(BIG_INT)));
        };
        Ok((v, None))
    }

    /// The rest of a string after its opening quote (`scanstring`, strict):
    /// control characters are refused, escapes decoded, surrogate pairs
    /// joined. `false` with it when it holds a lone surrogate (kept as
    /// U+FFFD, which Python would not have).
    fn string(&mut self) -> Result<(String, bool), Loads> {
        let mut out = String::new();
        let mut exact = true;
        loop {
            let from = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // Cut at ASCII bytes of a `&str`: always a char boundary.
            out.push_str(std::str::from_utf8(&self.s[from..self.i]).map_err(|_| Loads::Invalid)?);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok((out, exact));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or(Loads::Invalid)?;
                    self.i += 1;
                    out.push(match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?.unwrap_or_else(|lone| {
                            exact = false;
                            lone
                        }),
                        _ => return Err(Loads::Invalid),
                    });
                }
                // A raw control character, or the text ended.
                _ => return Err(Loads::Invalid),
            }
        }
    }

    /// `\uXXXX` after its `\u`, joined with a following low surrogate's;
    /// `Err(U+FFFD)` for a lone surrogate.
    fn unicode_escape(&mut self) -> Result<Result<char, char>, Loads> {
        let hi = self.hex4()?;
        if (0xd800..0xdc00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let at = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xdc00..0xe000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                return char::from_u32(c).map(Ok).ok_or(Loads::Invalid);
            }
            self.i = at;
        }
        Ok(char::from_u32(hi).ok_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex4(&mut self) -> Result<u32, Loads> {
        let h = self.s.get(self.i..self.i + 4).ok_or(Loads::Invalid)?;
        // Python's int(h, 16) would take `+1ab` or ` 1ab`; scanstring's
        // check of each digit does not.
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return Err(Loads::Invalid);
        }
        self.i += 4;
        let h = std::str::from_utf8(h).map_err(|_| Loads::Invalid)?;
        u32::from_str_radix(h, 16).map_err(|_| Loads::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = loads(text).unwrap();
        crate::pyfmt::json_dumps(&v, &crate::pyfmt::JsonOpts::default()).unwrap()
    }

    #[test]
    fn what_python_accepts_beyond_strict_json() {
        assert_eq!(
            json(r#"{"a": NaN, "b": Infinity, "c": -Infinity}"#),
            r#"{"a": NaN, "b": Infinity, "c": -Infinity}"#
        );
        assert_eq!(
            json("[123456789012345678901234567890, -0, 1e400, -1E400, 1.5e-400]"),
            "[123456789012345678901234567890, 0, Infinity, -Infinity, 0.0]"
        );
        assert_eq!(
            json("[1.0, 2.50, 1e2, 18446744073709551616]"),
            "[1.0, 2.5, 100.0, 18446744073709551616]"
        );
        // A repeated key keeps its first place and its last value.
        assert_eq!(json(r#"{"x": 1, "y": 2, "x": 3}"#), r#"{"x": 3, "y": 2}"#);
        assert_eq!(json(r#"" \ud83d\ude00 \u00e9 \/ \n""#), "\" 😀 é / \\n\"");
        assert_eq!(json(" \t\n{ } \r\n"), "{}");
    }

    #[test]
    fn what_python_refuses_or_cannot_be_held() {
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
            "nan",
            "infinity",
            "'a'",
            "\"a\u{1}\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u+123\"",
            "{1: 2}",
            "[1] [2]",
            "\u{feff}{}",
            "tru",
            "-Inf",
        ] {
            assert_eq!(loads(bad), Err(Loads::Invalid), "{bad:?}");
        }
        // Refused even where a value inside could not be held.
        for bad in [
            "{\"a\": \"\\ud800\"",
            "{\"a\": 9999999999999999999999999999999999999999",
            &format!("{{\"a\": {}", "[".repeat(200)),
            &format!("{}]", "[".repeat(300)),
        ] {
            assert_eq!(loads(bad), Err(Loads::Invalid), "{bad:?}");
        }
        let not_exact = |t: &str| matches!(loads(t), Err(Loads::NotExact(_)));
        // What the template would receive and cannot be held exactly.
        assert!(not_exact(r#"{"s": "\ud800"}"#));
        assert!(not_exact(r#"{"s": ["x\udc00\ud800x"]}"#));
        assert!(not_exact(r#"{"\ud800": 1}"#));
        assert!(not_exact(&format!(r#"{{"n": {}}}"#, "9".repeat(40))));
        let deep = |n: usize| format!("{{\"a\": {}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(not_exact(&deep(MAX_DEPTH)));
        assert!(loads(&deep(MAX_DEPTH - 1)).is_ok());
        // Past it only the syntax is checked, as Python checks it.
        let inner = r#"{"k": [1, {"x": "y\n", "e": {}}, [], "z"], "m": NaN} "#;
        let wrap = |x: &str| format!("{{\"a\": {}{x}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(not_exact(&wrap(inner)));
        for bad in [
            r#"{"k" 1}"#,
            r#"{"k": [1,]}"#,
            r#"{"k": 1,}"#,
            r#"[1 2]"#,
            r#"{"k": "\q"}"#,
            "{1: 2}",
        ] {
            assert_eq!(loads(&wrap(bad)), Err(Loads::Invalid), "{bad}");
        }
        // ... unless it does not reach the template: a later value of its
        // key, or a document that is not an object (vLLM then uses `{}`).
        assert_eq!(json(r#"{"s": "\ud800", "s": 1}"#), r#"{"s": 1}"#);
        assert!(loads(r#""\ud800""#).is_ok());
        assert!(loads(&format!("[{}]", "9".repeat(40))).is_ok());
        assert!(loads(&format!("{}{}", "[".repeat(500), "]".repeat(500))).is_ok());
        // 2^127 fits unsigned 128 bits.
        assert_eq!(
            json(r#"{"n": 170141183460469231731687303715884105728}"#),
            r#"{"n": 170141183460469231731687303715884105728}"#
        );
        // Where Python itself raises (not a JSONDecodeError): at once.
        assert!(not_exact(&format!("[{}, ", "1".repeat(4301))));
        assert!(not_exact(&"[".repeat(1000)));
    }

    /// Random documents over JSON's punctuation, escapes and literals
    /// (a fixed-seed generator): parsing never panics, and whatever parses
    /// prints.
    #[test]
    fn random_documents_never_panic() {
        const PIECES: [&str; 34] = [
            "{",
            "}",
            "[",
            "]",
            "\"",
            "\\",
            "\\u",
            "d8",
            "dc",
            "00",
            "0",
            "1",
            "9",
            "e",
            "E",
            "-",
            "+",
            ".",
            ",",
            ":",
            " ",
            "\n",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "false",
            "null",
            "\"k\"",
            "\u{1}",
            "😀",
            "é",
            "\\ud83d\\ude00",
            "99999999999999999999999999999999999999999",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut parsed = 0;
        for _ in 0..50_000 {
            let n = next() % 24;
            let doc: String = (0..n).map(|_| PIECES[(next() % 34) as usize]).collect();
            if let Ok(v) = loads(&doc) {
                parsed += 1;
                crate::pyfmt::json_dumps(&v, &crate::pyfmt::JsonOpts::default()).unwrap();
                let _ = crate::pyfmt::py_str(&v);
            }
        }
        assert!(parsed > 100, "{parsed}");
    }
}
