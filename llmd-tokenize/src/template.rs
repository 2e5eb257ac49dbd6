//! A chat template compiled the way transformers compiles it: Jinja with
//! `trim_blocks` and `lstrip_blocks`, loop controls, Python's string and
//! dict methods, `tojson` as `json.dumps(ensure_ascii=False)`,
//! `raise_exception`, `strftime_now`, and values printed as Python prints
//! them.

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use crate::pyfmt::{json_dumps, py_space, py_str, JsonOpts};

const NAME: &str = "chat_template";

/// A compiled chat template.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    undeclared: std::collections::HashSet<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bytes", &self.source.len())
            .finish()
    }
}

/// The widest `tojson` indent taken.
const MAX_INDENT: i64 = 1024;

fn tojson(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(i) if i.is_none() => None,
        Some(i) => match i.as_i64() {
            // A wider indent than any template uses is refused before its
            // spaces are allocated (it comes from the template or kwargs).
            Some(n) if n > MAX_INDENT => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson indent {n} is over {MAX_INDENT}"),
                ))
            }
            Some(n) => Some(" ".repeat(n.max(0) as usize)),
            // A string indent is bounded alike: it is written once per
            // nesting level on every line.
            None => {
                let s = i.as_str().unwrap_or_default();
                if s.len() as i64 > MAX_INDENT {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("tojson indent of {} bytes is over {MAX_INDENT}", s.len()),
                    ));
                }
                Some(s.to_string())
            }
        },
    };
    let separators = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(s) if s.len() == 2 => Some((s[0].clone(), s[1].clone())),
        _ => None,
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    json_dumps(
        &v,
        &JsonOpts {
            indent,
            separators,
            sort_keys,
            ensure_ascii,
        },
    )
    .map(Value::from_safe_string)
    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
}

/// Longest rendered prompt: well past any request a router takes (its bodies
/// are capped at 32 MiB), so only a template multiplying its input (deeply
/// nested tools printed with an indent) reaches it.
pub const MAX_RENDERED_BYTES: usize = 128 << 20;

/// A rendering's output, failing past [`MAX_RENDERED_BYTES`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other(format!(
                "the rendered prompt exceeds {MAX_RENDERED_BYTES} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `str.split()` without a separator: runs of Python whitespace, at most
/// `maxsplit` splits (negative: all), no empty pieces.
fn py_split_ws(s: &str, maxsplit: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(py_space);
    while !rest.is_empty() {
        if maxsplit >= 0 && out.len() as i64 >= maxsplit {
            // The remainder keeps its trailing whitespace, as in Python.
            out.push(Value::from(rest));
            break;
        }
        let end = rest.find(py_space).unwrap_or(rest.len());
        out.push(Value::from(&rest[..end]));
        rest = rest[end..].trim_start_matches(py_space);
    }
    out
}

/// String methods whose Python meaning of whitespace differs from Rust's
/// (`strip`, `lstrip`, `rstrip` without characters, `split` without a
/// separator, `isspace`); everything else as minijinja's Python layer does.
fn py_methods(
    state: &minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let no_arg = |i: usize| args.get(i).map_or(true, Value::is_none);
    if let Some(s) = value.as_str() {
        match method {
            "strip" if args.len() <= 1 && no_arg(0) => {
                return Ok(Value::from(s.trim_matches(py_space)))
            }
            "lstrip" if args.len() <= 1 && no_arg(0) => {
                return Ok(Value::from(s.trim_start_matches(py_space)))
            }
            "rstrip" if args.len() <= 1 && no_arg(0) => {
                return Ok(Value::from(s.trim_end_matches(py_space)))
            }
            "isspace" if args.is_empty() => {
                return Ok(Value::from(!s.is_empty() && s.chars().all(py_space)))
            }
            "split" if args.len() <= 2 && no_arg(0) => {
                let max = match args.get(1) {
                    Some(m) => m.as_i64().ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, "maxsplit must be an integer")
                    })?,
                    None => -1,
                };
                return Ok(Value::from(py_split_ws(s, max)));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Jinja's `trim`: `str(value).strip(chars)`, with Python's whitespace.
fn trim(v: Value, chars: Option<String>) -> Value {
    let s = match v.as_str() {
        Some(s) => s.to_string(),
        None => py_str(&v),
    };
    Value::from(match chars {
        Some(c) => s.trim_matches(|x| c.contains(x)).to_string(),
        None => s.trim_matches(py_space).to_string(),
    })
}

/// Jinja's `format`: `value % args`, Python's printf-style formatting with
/// values printed as Python prints them (`%s` of a list is `['a', None]`).
/// Conversions `s r d i u f F e E g G x X o c %` with flags `-0+ #`, a
/// width and a precision; a mapping argument (`%(name)s`) is not supported.
fn format(fmt: String, args: minijinja::value::Rest<Value>) -> Result<Value, Error> {
    let bad = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    let mut out = String::with_capacity(fmt.len());
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-0+ #".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            n.parse::<usize>().ok().map(|n| n.min(4096))
        };
        let width = num(&mut chars);
        let prec = if chars.peek() == Some(&'.') {
            chars.next();
            Some(num(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let conv = chars
            .next()
            .ok_or_else(|| bad("incomplete format".into()))?;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| bad("not enough arguments for format string".into()))?;
        let float = || {
            f64::try_from(arg.clone()).map_err(|_| {
                bad(format!(
                    "%{conv} format: a real number is required, not {}",
                    arg.kind()
                ))
            })
        };
        let sign = |neg: bool| {
            if neg {
                "-"
            } else if flags.contains('+') {
                "+"
            } else if flags.contains(' ') {
                " "
            } else {
                ""
            }
        };
        let (body, numeric): (String, bool) = match conv {
            's' | 'r' => {
                let t = if conv == 's' {
                    py_str(arg)
                } else {
                    crate::pyfmt::repr(arg)
                };
                (
                    match prec {
                        Some(p) => t.chars().take(p).collect(),
                        None => t,
                    },
                    false,
                )
            }
            'd' | 'i' | 'u' => {
                let f = float()?;
                let i = f.trunc();
                (format!("{}{:.0}", sign(i < 0.0), i.abs()), true)
            }
            'f' | 'F' => {
                let f = float()?;
                (
                    format!("{}{:.*}", sign(f < 0.0), prec.unwrap_or(6), f.abs()),
                    true,
                )
            }
            'e' | 'E' => {
                let f = float()?;
                let t = format!("{:.*e}", prec.unwrap_or(6), f.abs());
                // Rust writes 1.5e3; Python 1.500000e+03.
                let (m, e) = t.split_once('e').unwrap_or((&t, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let t = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
                (
                    format!(
                        "{}{}",
                        sign(f < 0.0),
                        if conv == 'E' { t.to_uppercase() } else { t }
                    ),
                    true,
                )
            }
            'g' | 'G' => {
                let f = float()?;
                let t = general(f.abs(), prec.unwrap_or(6).max(1), flags.contains('#'));
                (
                    format!(
                        "{}{}",
                        sign(f < 0.0),
                        if conv == 'G' { t.to_uppercase() } else { t }
                    ),
                    true,
                )
            }
            'x' | 'X' | 'o' => {
                let i = float()?.trunc() as i128;
                let t = match conv {
                    'x' => format!("{:x}", i.unsigned_abs()),
                    'X' => format!("{:X}", i.unsigned_abs()),
                    _ => format!("{:o}", i.unsigned_abs()),
                };
                let alt = match (flags.contains('#'), conv) {
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    (true, _) => "0o",
                    _ => "",
                };
                (format!("{}{alt}{t}", sign(i < 0)), true)
            }
            'c' => {
                let ch = match arg.as_str() {
                    Some(s) if s.chars().count() == 1 => s.to_string(),
                    _ => arg
                        .as_i64()
                        .and_then(|i| u32::try_from(i).ok())
                        .and_then(char::from_u32)
                        .map(String::from)
                        .ok_or_else(|| bad("%c requires an int or a char".into()))?,
                };
                (ch, false)
            }
            other => return Err(bad(format!("unsupported format character '{other}'"))),
        };
        let w = width.unwrap_or(0);
        let n = body.chars().count();
        if n >= w {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.extend(std::iter::repeat(' ').take(w - n));
        } else if flags.contains('0') && numeric {
            // Zeros go after the sign.
            let (sgn, digits) =
                body.split_at(body.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0));
            out.push_str(sgn);
            out.extend(std::iter::repeat('0').take(w - n));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat(' ').take(w - n));
            out.push_str(&body);
        }
    }
    if args.next().is_some() {
        return Err(bad(
            "not all arguments converted during string formatting".into()
        ));
    }
    Ok(Value::from(out))
}

/// `%.{p}g` of a non-negative `f` as Python writes it: fixed notation when
/// the exponent is in `-4..p`, else `d.ddde+XX`; trailing zeros dropped
/// unless `alt`.
fn general(f: f64, p: usize, alt: bool) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else {
            "inf".into()
        };
    }
    let sci = format!("{:.*e}", p - 1, f);
    let (m, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i64 = e.parse().unwrap_or(0);
    let trim = |t: String| {
        if alt || !t.contains('.') {
            t
        } else {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    if x >= -4 && x < p as i64 {
        trim(format!("{:.*}", (p as i64 - 1 - x).max(0) as usize, f))
    } else {
        format!(
            "{}e{}{:02}",
            trim(m.to_string()),
            if x < 0 { '-' } else { '+' },
            x.abs()
        )
    }
}

/// Jinja's `string`: `str(value)`, printed as Python prints it (a list of
/// types as `['string', 'null']`, a float as `1e-05`).
fn string(v: Value) -> Value {
    if v.kind() == ValueKind::String {
        return v;
    }
    Value::from(py_str(&v))
}

/// Names read by a `{% set X = … %}` that reads `X` itself (`{% set
/// enable_thinking = enable_thinking | default(false) %}`) before any
/// top-level statement binds `X`. Jinja2, which vLLM asks for the
/// template's inputs, reads an assignment's value before it binds the name,
/// so such an `X` is an input (and `chat_template_kwargs.X` reaches the
/// template); minijinja binds first and leaves it out. Only an assignment
/// outside every block binds a name for what follows: one inside an `if`
/// may not have run, a loop's or macro's names do not outlive it.
fn self_reading_sets(source: &str) -> Vec<String> {
    const OPENS: [&str; 9] = [
        "for",
        "if",
        "macro",
        "call",
        "filter",
        "block",
        "with",
        "autoescape",
        "raw",
    ];
    let mut bound: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    let mut depth = 0usize;
    for stmt in crate::chat::statements(source) {
        let (kw, rest) = stmt.split_once(char::is_whitespace).unwrap_or((stmt, ""));
        if kw.starts_with("end") {
            depth = depth.saturating_sub(1);
            continue;
        }
        if OPENS.contains(&kw) {
            depth += 1;
            continue;
        }
        if kw != "set" {
            continue;
        }
        let Some((target, value)) = rest.split_once('=') else {
            // `{% set x %}…{% endset %}`: its body is no read of `x`, and a
            // block until `endset`.
            if depth == 0 && is_identifier(rest.trim()) {
                bound.push(rest.trim());
            }
            depth += 1;
            continue;
        };
        let target = target.trim();
        if !is_identifier(target) || bound.contains(&target) {
            continue;
        }
        if identifiers(value).any(|n| n == target) && !out.iter().any(|o| o == target) {
            out.push(target.to_string());
        }
        if depth == 0 {
            bound.push(target);
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|c| c.is_alphanumeric() || c == '_')
}

/// The names an expression reads: identifiers outside string literals, not
/// after a `.` (attributes).
fn identifiers(expr: &str) -> impl Iterator<Item = &str> {
    let bytes = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' || b == b'"' {
            // Skip the literal (a backslash escapes the next byte).
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let attr = expr[..start].trim_end().ends_with('.');
            if !attr {
                names.push(&expr[start..i]);
            }
        } else {
            i += 1;
        }
    }
    names.into_iter()
}

/// transformers compiles templates with an extension that gives
/// `{% generation %} ... {% endgeneration %}` (assistant masks for
/// training) and renders the body as it is: the same tags as a no-op `if`,
/// whitespace markers kept.
fn without_generation_tags(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains("generation") {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        out.push_str(&rest[..at]);
        let tag = &rest[at..];
        // From past the opening `{%`: in `{%}` the `%}` overlaps it.
        let Some(close) = tag[2..].find("%}").map(|i| i + 2) else {
            out.push_str(tag);
            return std::borrow::Cow::Owned(out);
        };
        let inner = &tag[2..close];
        let (lead, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, trail) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[b.len()..]),
            None => (body, ""),
        };
        match body.trim() {
            "generation" => out.push_str(&format!("{{%{lead} if true {trail}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{lead} endif {trail}%}}")),
            _ => out.push_str(&tag[..close + 2]),
        }
        rest = &tag[close + 2..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `datetime.now().strftime(fmt)` for the codes chat templates use, in UTC.
pub fn strftime(fmt: &str, unix_s: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let wd = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - {
        let mut jan1 = days;
        while civil(jan1 - 1).0 == y {
            jan1 -= 1;
            if days - jan1 > 370 {
                break;
            }
        }
        jan1
    } + 1;
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('B') => out.push_str(MONTHS[m as usize - 1]),
            Some('b') | Some('h') => out.push_str(&MONTHS[m as usize - 1][..3]),
            Some('A') => out.push_str(DAYS[wd]),
            Some('a') => out.push_str(&DAYS[wd][..3]),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('I') => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
            Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{mi:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn strftime_now(fmt: String) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    strftime(&fmt, now)
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names the line.
    pub fn new(source: &str) -> Result<ChatTemplate, Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(py_methods);
        env.add_filter("tojson", tojson);
        env.add_filter("trim", trim);
        env.add_filter("string", string);
        env.add_filter("format", format);
        // Jinja2's tests, not minijinja's: `none` is not iterable, and
        // strings and dicts are sequences.
        env.add_test("iterable", |v: Value| {
            matches!(
                v.kind(),
                ValueKind::Seq
                    | ValueKind::Map
                    | ValueKind::String
                    | ValueKind::Iterable
                    | ValueKind::Bytes
            )
        });
        env.add_test("sequence", |v: Value| {
            matches!(
                v.kind(),
                ValueKind::Seq | ValueKind::Map | ValueKind::String | ValueKind::Bytes
            )
        });
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.set_formatter(|out, _state, value| out.write_str(&py_str(value)).map_err(Error::from));
        env.add_template_owned(NAME, without_generation_tags(source).into_owned())?;
        let mut undeclared = env.get_template(NAME)?.undeclared_variables(false);
        undeclared.extend(self_reading_sets(source));
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            undeclared,
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Variables the template reads without setting them (what vLLM
    /// accepts from `chat_template_kwargs`).
    pub fn undeclared(&self) -> &std::collections::HashSet<String> {
        &self.undeclared
    }

    /// Renders with `ctx` (messages, tools, add_generation_prompt, special
    /// tokens, extra keyword arguments); a rendering longer than
    /// [`MAX_RENDERED_BYTES`] fails.
    pub fn render(&self, ctx: Value) -> Result<String, Error> {
        let mut out = Bounded(Vec::new());
        self.env
            .get_template(NAME)?
            .render_captured_to(ctx, &mut out)?;
        String::from_utf8(out.0).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jinja2's order: an assignment reads its value before it binds the
    /// name, so a self-reading first `set` is an input; a name bound
    /// earlier, mentioned only in a string or as an attribute, is not.
    #[test]
    fn a_self_reading_set_is_an_input() {
        let inputs = |src: &str| {
            let mut v: Vec<_> = ChatTemplate::new(src)
                .unwrap()
                .undeclared()
                .iter()
                .cloned()
                .collect();
            v.sort();
            v
        };
        assert_eq!(inputs("{%- set t = t | default(false) -%}{{ t }}"), ["t"]);
        assert_eq!(
            inputs("{% set t = true if t is defined and t else false %}{{ t }}"),
            ["t"]
        );
        assert!(inputs("{% set t = 1 %}{% set t = t + 1 %}{{ t }}").is_empty());
        assert!(inputs("{% set t = 't' ~ \"t\" %}{{ t }}").is_empty());
        assert_eq!(
            inputs("{% set ns = namespace(t=1) %}{% set t = ns.t %}{{ t }}"),
            ["namespace"]
        );
        // A loop's name does not outlive it; a set inside an `if` may not
        // have run (both as Jinja2 3.1 answers).
        assert_eq!(
            inputs("{% for t in [1] %}{% endfor %}{% set t = t %}"),
            ["t"]
        );
        assert_eq!(
            inputs("{% if a %}{% set x = 1 %}{% endif %}{% set x = x + 1 %}{{ x }}"),
            ["a", "x"]
        );
        assert!(inputs("{% set x %}1{% endset %}{% set x = x ~ 2 %}{{ x }}").is_empty());
    }

    /// `{%}` inside a template that mentions generation (whose tags are
    /// rewritten on load) is text, not a tag: it loads, no panic.
    #[test]
    fn a_percent_brace_literal_loads() {
        let t = ChatTemplate::new("{{ '{%}' }}{% if add_generation_prompt %}x{% endif %}").unwrap();
        assert!(t.undeclared().contains("add_generation_prompt"));
    }

    /// A rendering that multiplies its input (tools nested deep, printed
    /// with an indent) fails once past the limits instead of growing
    /// without bound.
    #[test]
    fn output_is_bounded() {
        let mut v = Value::from(vec![Value::from("x"); 1 << 20]);
        for _ in 0..16 {
            v = Value::from(vec![v]);
        }
        let t = ChatTemplate::new("{{ tools | tojson(indent=4) }}").unwrap();
        let e = t.render(minijinja::context! { tools => v }).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
        // An indent is refused before its spaces are allocated.
        let t = ChatTemplate::new("{{ [1] | tojson(indent=n) }}").unwrap();
        let e = t.render(minijinja::context! { n => i64::MAX }).unwrap_err();
        assert!(e.to_string().contains("indent"), "{e}");
        let ok = t.render(minijinja::context! { n => 2 }).unwrap();
        assert_eq!(ok, "[\n  1\n]");
        // So is a string indent longer than the widest number.
        let e = t
            .render(minijinja::context! { n => "x".repeat(1 << 20) })
            .unwrap_err();
        assert!(e.to_string().contains("indent of"), "{e}");
        let ok = t.render(minijinja::context! { n => "\t" }).unwrap();
        assert_eq!(ok, "[\n\t1\n]");
        let mut w = Bounded(Vec::new());
        let chunk = vec![b'a'; 1 << 20];
        let fits = MAX_RENDERED_BYTES / chunk.len();
        for _ in 0..fits {
            std::io::Write::write(&mut w, &chunk).unwrap();
        }
        assert!(std::io::Write::write(&mut w, &chunk).is_err());
    }

    /// Whitespace as Python's `str.isspace` sees it (U+001C..U+001F
    /// included), in the `trim` filter and the string methods.
    #[test]
    fn python_whitespace() {
        let t = ChatTemplate::new(
            "{{ a | trim }}|{{ a.strip() }}|{{ a.lstrip() }}|{{ a.rstrip() }}|{{ b.split() }}|{{ b.split(None, 1) }}|{{ c.isspace() }}|{{ a.strip('\\x1e') }}|{{ 3 | trim }}",
        )
        .unwrap();
        let ctx =
            minijinja::context! { a => "\u{1e} log \u{1f}", b => " x\u{1c}y  z ", c => "\u{1d}\n" };
        assert_eq!(
            t.render(ctx).unwrap(),
            "log|log|log \u{1f}|\u{1e} log|['x', 'y', 'z']|['x', 'y  z ']|True| log \u{1f}|3"
        );
    }

    /// `string` prints as Python's `str()`.
    #[test]
    fn the_string_filter_prints_as_python() {
        let t = ChatTemplate::new(
            "{{ t | string }}|{{ f | string }}|{{ g | string }}|{{ s | string }}",
        )
        .unwrap();
        let ctx = minijinja::context! {
            t => Value::from_serialize(serde_json::json!(["string", "null"])),
            f => 1e-5, g => 1e16, s => "x",
        };
        assert_eq!(t.render(ctx).unwrap(), "['string', 'null']|1e-05|1e+16|x");
    }

    /// `format` is Python's `%` with Python's printing.
    #[test]
    fn format_is_python_percent() {
        let t = ChatTemplate::new(
            "{{ '%s' | format(l) }}|{{ '%r=%5.2f|%-4d|%04d|%+d' | format('k', 3.14159, 7, -5, 2) }}|{{ '%x %e %%' | format(255, 1500.0) }}|{{ '%g %g %g %.3g %G' | format(1500.0, 0.0001, 1e16, 3.14159, 1e-7) }}",
        )
        .unwrap();
        let ctx =
            minijinja::context! { l => Value::from_serialize(serde_json::json!(["a", null])) };
        assert_eq!(
            t.render(ctx).unwrap(),
            "['a', None]|'k'= 3.14|7   |-005|+2|ff 1.500000e+03 %|1500 0.0001 1e+16 3.14 1E-07"
        );
        for bad in [
            "{{ '%s %s' | format(1) }}",
            "{{ '%s' | format(1, 2) }}",
            "{{ '%q' | format(1) }}",
        ] {
            assert!(
                ChatTemplate::new(bad)
                    .unwrap()
                    .render(minijinja::context! {})
                    .is_err(),
                "{bad}"
            );
        }
    }

    /// `{% generation %}` blocks render their body, whitespace control kept.
    #[test]
    fn generation_blocks_render_their_body() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{%- generation -%}\n  [{{ m }}]\n{%- endgeneration %}{% endfor %}|{%generation%}x{%endgeneration%}",
        )
        .unwrap();
        let ctx = minijinja::context! { messages => vec!["a", "b"] };
        assert_eq!(t.render(ctx).unwrap(), "[a][b]|x");
        assert_eq!(
            without_generation_tags("{%- generation +%}{{ x }}{%+ endgeneration -%}"),
            "{%- if true +%}{{ x }}{%+ endif -%}"
        );
    }

    #[test]
    fn strftime_codes() {
        // 2024-07-26 13:05:09 UTC, a Friday.
        let t = 1_722_000_309;
        assert_eq!(strftime("%d %b %Y", t), "26 Jul 2024");
        assert_eq!(
            strftime("%A %B %e %H:%M:%S %j %p %I %y %%", t),
            "Friday July 26 13:25:09 208 PM 01 24 %"
        );
    }

    #[test]
    fn python_printing_and_tojson() {
        let t = ChatTemplate::new(
            "{{ x }}|{{ n }}|{{ b }}|{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ 'a b'.split() }}|{% if true %}\n  y\n{% endif %}",
        )
        .unwrap();
        let ctx = minijinja::context! { x => Value::from_serialize(serde_json::json!({"k": [1, "é"]})), n => Value::from(()), b => true };
        let ascii = ChatTemplate::new("{{ x | tojson(ensure_ascii=true) }}").unwrap();
        assert_eq!(
            ascii.render(minijinja::context! { x => "é🙂\"" }).unwrap(),
            "\"\\u00e9\\ud83d\\ude42\\\"\""
        );
        assert_eq!(
            t.render(ctx).unwrap(),
            "{'k': [1, 'é']}|None|True|{\"k\": [1, \"é\"]}|{\n  \"k\": [\n    1,\n    \"é\"\n  ]\n}|['a', 'b']|  y\n"
        );
        let err = ChatTemplate::new("{{ raise_exception('no') }}")
            .unwrap()
            .render(minijinja::context! {})
            .unwrap_err();
        assert!(err.to_string().contains("no"));
    }
}
