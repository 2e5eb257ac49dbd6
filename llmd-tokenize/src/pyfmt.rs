//! Python's text forms of template values, as transformers' Jinja
//! environment produces them: `json.dumps` (its `tojson` filter, with
//! `ensure_ascii=False`) and `repr`/`str` (what `{{ value }}` prints for
//! lists, dicts, booleans and `None`).

use minijinja::value::{Value, ValueKind};

/// `repr(float)`: shortest round-trip digits; exponent form below 1e-4 and
/// from 1e16 on; `.0` on integral values.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip mantissa, e.g. "1.5e-7".
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// Python's `str.isspace` for one character: Unicode whitespace plus the
/// four information separators U+001C..U+001F, which Rust does not count.
pub fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn json_string(s: &str, ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            // `ensure_ascii=True`: every other character as `\uXXXX`, past
            // the BMP as a surrogate pair.
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps` options (the `tojson` filter's arguments).
#[derive(Clone, Debug, Default)]
pub struct JsonOpts {
    /// `indent`: `None`, a number of spaces, or a string.
    pub indent: Option<String>,
    /// `separators` (item, key); defaults as Python's.
    pub separators: Option<(String, String)>,
    /// `sort_keys`.
    pub sort_keys: bool,
    /// `ensure_ascii` (false, as transformers' `tojson` defaults it).
    pub ensure_ascii: bool,
}

/// `json.dumps(value, ensure_ascii=False, ...)`.
/// Longest `tojson` output: a value nested deep with an indent grows with
/// the square of its depth (a few hundred bytes of tools could print as
/// gigabytes); past this the rendering fails.
pub const MAX_DUMP_BYTES: usize = 64 << 20;

pub fn json_dumps(v: &Value, o: &JsonOpts) -> Result<String, String> {
    let (item, key) = o.separators.clone().unwrap_or_else(|| {
        if o.indent.is_some() {
            (",".into(), ": ".into())
        } else {
            (", ".into(), ": ".into())
        }
    });
    let mut out = String::new();
    dump(v, o, &item, &key, 0, &mut out)?;
    Ok(out)
}

fn newline(o: &JsonOpts, level: usize, out: &mut String) {
    if let Some(ind) = &o.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn dump(
    v: &Value,
    o: &JsonOpts,
    item: &str,
    key: &str,
    level: usize,
    out: &mut String,
) -> Result<(), String> {
    if out.len() > MAX_DUMP_BYTES {
        return Err(format!("tojson output exceeds {MAX_DUMP_BYTES} bytes"));
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => number(v, true, out),
        ValueKind::String | ValueKind::Bytes => {
            json_string(v.as_str().unwrap_or_default(), o.ensure_ascii, out)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item);
                }
                newline(o, level + 1, out);
                dump(x, o, item, key, level + 1, out)?;
            }
            newline(o, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if o.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item);
                }
                newline(o, level + 1, out);
                let ks = match k.kind() {
                    ValueKind::String => k.as_str().unwrap_or_default().to_string(),
                    ValueKind::Bool => if k.is_true() { "true" } else { "false" }.to_string(),
                    ValueKind::None => "null".to_string(),
                    ValueKind::Number => {
                        let mut s = String::new();
                        number(k, true, &mut s);
                        s
                    }
                    _ => {
                        return Err(format!(
                            "keys must be str, int, float, bool or None, not {}",
                            k.kind()
                        ))
                    }
                };
                json_string(&ks, o.ensure_ascii, out);
                out.push_str(key);
                let val = v.get_item(k).map_err(|e| e.to_string())?;
                dump(&val, o, item, key, level + 1, out)?;
            }
            newline(o, level, out);
            out.push('}');
        }
        other => return Err(format!("Object of type {other} is not JSON serializable")),
    }
    Ok(())
}

fn number(v: &Value, json: bool, out: &mut String) {
    if let Some(i) = v.as_i64() {
        if !v.to_string().contains('.') {
            out.push_str(&i.to_string());
            return;
        }
    }
    match f64::try_from(v.clone()) {
        Ok(f) if json && f.is_nan() => out.push_str("NaN"),
        Ok(f) if json && f.is_infinite() => {
            out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        // Python prints `nan`, `inf`, `-inf` (minijinja `NaN`, `inf`).
        Ok(f) if !f.is_finite() => out.push_str(&float_repr(f)),
        Ok(f) if v.to_string().contains(['.', 'e', 'E']) => out.push_str(&float_repr(f)),
        _ => out.push_str(&v.to_string()),
    }
}

/// `repr(str)`: single quotes unless the text has a `'` and no `"`.
pub fn str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                out.push_str(&match n {
                    ..=0xff => format!("\\x{n:02x}"),
                    0x100..=0xffff => format!("\\u{n:04x}"),
                    _ => format!("\\U{n:08x}"),
                });
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `str.isprintable()` for one character, which `repr` escapes
/// when false: control (Cc) and format (Cf) characters, separators other
/// than the space (Zs, Zl, Zp) and private use (Co). Unassigned code points
/// (Cn), which Python escapes too by its own Unicode version, are printed.
fn printable(c: char) -> bool {
    !matches!(c as u32,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2
        | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
        | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..=0xffffd | 0x100000..=0x10fffd)
}

/// `repr(value)` (items of printed lists and dicts).
pub fn repr(v: &Value) -> String {
    match v.kind() {
        ValueKind::String => str_repr(v.as_str().unwrap_or_default()),
        _ => py_str(v),
    }
}

/// `str(value)`: what `{{ value }}` prints.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => {
            let mut s = String::new();
            number(v, false, &mut s);
            s
        }
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Seq => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        format!(
                            "{}: {}",
                            repr(&k),
                            repr(&v.get_item(&k).unwrap_or_default())
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by Python 3's `repr`.
    #[test]
    fn str_repr_escapes_what_python_does_not_print() {
        for (s, r) in [
            ("a\u{a0}b", "'a\\xa0b'"),
            ("\u{1f468}\u{200d}\u{1f469}", "'\u{1f468}\\u200d\u{1f469}'"),
            ("x\u{2028}", "'x\\u2028'"),
            ("\u{f0000}", "'\\U000f0000'"),
            ("é ü 中", "'é ü 中'"),
            ("\u{85}", "'\\x85'"),
            ("\u{ad}", "'\\xad'"),
            ("\u{feff}", "'\\ufeff'"),
            ("it's", "\"it's\""),
        ] {
            assert_eq!(str_repr(s), r, "{s:?}");
        }
    }

    #[test]
    fn floats_print_as_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1.5e16, "1.5e+16"),
            (123456.789, "123456.789"),
            (-2.5e-7, "-2.5e-07"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
    }

    #[test]
    fn json_dumps_matches_python() {
        let v: Value =
            serde_json::from_str::<Value>(r#"{"b": [1, 2.5, "x\n\u00e9"], "a": null, "c": {}}"#)
                .unwrap();
        assert_eq!(
            json_dumps(&v, &JsonOpts::default()).unwrap(),
            "{\"b\": [1, 2.5, \"x\\n\u{e9}\"], \"a\": null, \"c\": {}}"
        );
        let o = JsonOpts {
            indent: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(json_dumps(&v, &o).unwrap(), "{\n  \"b\": [\n    1,\n    2.5,\n    \"x\\n\u{e9}\"\n  ],\n  \"a\": null,\n  \"c\": {}\n}");
        assert_eq!(py_str(&v), "{'b': [1, 2.5, 'x\\né'], 'a': None, 'c': {}}");
    }
}
