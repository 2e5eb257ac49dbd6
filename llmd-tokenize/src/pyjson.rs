//! Python's `json.loads`, as vLLM applies it to a tool call's `arguments`
//! string before the template sees them (`_postprocess_messages`).
//!
//! It accepts more than strict JSON, and keeps more: `NaN`, `Infinity` and
//! `-Infinity` are floats, an integer keeps every digit (`-0` is the
//! integer 0), a number with a fraction or exponent is a float (`1e400` is
//! infinity), and a key given twice keeps its first position with its last
//! value. A document it refuses is a `JSONDecodeError`, which vLLM turns
//! into `{}`. Values no template value can hold exactly (an integer beyond
//! 128 bits, a lone UTF-16 surrogate) and nesting deeper than
//! [`MAX_DEPTH`] (Python raises `RecursionError` somewhere around its
//! recursion limit, which depends on the process) are [`Loads::NotExact`].

use minijinja::Value;

/// Nesting of arrays and objects this parser follows.
pub const MAX_DEPTH: usize = 128;

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
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(Loads::Invalid); // "Extra data"
    }
    Ok(v)
}

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

    fn value(&mut self, depth: usize) -> Result<Value, Loads> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string().map(Value::from)
            }
            Some(b'{') | Some(b'[') if depth >= MAX_DEPTH => Err(Loads::NotExact(
                "tool call arguments nest deeper than the renderer follows",
            )),
            Some(b'{') => {
                self.i += 1;
                self.object(depth + 1)
            }
            Some(b'[') => {
                self.i += 1;
                self.array(depth + 1)
            }
            _ if self.eat("null") => Ok(Value::from(())),
            _ if self.eat("true") => Ok(Value::from(true)),
            _ if self.eat("false") => Ok(Value::from(false)),
            _ if self.eat("NaN") => Ok(Value::from(f64::NAN)),
            _ if self.eat("Infinity") => Ok(Value::from(f64::INFINITY)),
            _ if self.eat("-Infinity") => Ok(Value::from(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Loads::Invalid),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, Loads> {
        // Python's dict: a repeated key keeps its first position and takes
        // its last value (the map preserves insertion order).
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        self.ws();
        if self.eat("}") {
            return Ok(Value::from_iter(pairs));
        }
        loop {
            if !self.eat("\"") {
                return Err(Loads::Invalid);
            }
            let k = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(Loads::Invalid);
            }
            self.ws();
            let v = self.value(depth)?;
            match at.get(&k) {
                Some(&i) => pairs[i].1 = v,
                None => {
                    at.insert(k.clone(), pairs.len());
                    pairs.push((Value::from(k), v));
                }
            }
            self.ws();
            if self.eat("}") {
                return Ok(Value::from_iter(pairs));
            }
            if !self.eat(",") {
                return Err(Loads::Invalid);
            }
            self.ws();
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Loads> {
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Value::from(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            if self.eat("]") {
                return Ok(Value::from(items));
            }
            if !self.eat(",") {
                return Err(Loads::Invalid);
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`: an int without a
    /// fraction or exponent, else `float()` of the text.
    fn number(&mut self) -> Result<Value, Loads> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - from
        };
        self.eat("-");
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(Loads::Invalid),
        }
        let int_end = self.i;
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
            return text
                .parse::<f64>()
                .map(Value::from)
                .map_err(|_| Loads::Invalid);
        }
        debug_assert_eq!(int_end, self.i);
        match text.parse::<i128>() {
            // `-0` is the integer 0.
            Ok(n) => Ok(match i64::try_from(n) {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(n),
            }),
            Err(_) => Err(Loads::NotExact(
                "a tool call argument is an integer beyond 128 bits",
            )),
        }
    }

    /// The rest of a string after its opening quote (`scanstring`, strict):
    /// control characters are refused, escapes decoded, surrogate pairs
    /// joined.
    fn string(&mut self) -> Result<String, Loads> {
        let mut out = String::new();
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
                    return Ok(out);
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
                        b'u' => self.unicode_escape()?,
                        _ => return Err(Loads::Invalid),
                    });
                }
                // A raw control character, or the text ended.
                _ => return Err(Loads::Invalid),
            }
        }
    }

    /// `\uXXXX` after its `\u`, joined with a following low surrogate's.
    fn unicode_escape(&mut self) -> Result<char, Loads> {
        let hi = self.hex4()?;
        if (0xd800..0xdc00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let at = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xdc00..0xe000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                return char::from_u32(c).ok_or(Loads::Invalid);
            }
            self.i = at;
        }
        char::from_u32(hi).ok_or(Loads::NotExact(
            "a tool call argument holds a lone UTF-16 surrogate",
        ))
    }

    fn hex4(&mut self) -> Result<u32, Loads> {
        let h = self.s.get(self.i..self.i + 4).ok_or(Loads::Invalid)?;
        // Python's int(h, 16) would take `+1ab` or ` 1ab`; scanstring's
        // regex does not.
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
        let big = format!("[{}]", "9".repeat(40));
        assert!(matches!(loads(&big), Err(Loads::NotExact(_))));
        assert!(matches!(loads(r#""\ud800""#), Err(Loads::NotExact(_))));
        assert!(matches!(
            loads(r#""\udc00\ud800x""#),
            Err(Loads::NotExact(_))
        ));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(loads(&deep), Err(Loads::NotExact(_))));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(loads(&ok).is_ok());
    }
}
