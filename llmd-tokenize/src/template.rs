//! A chat template compiled the way transformers compiles it: Jinja with
//! `trim_blocks` and `lstrip_blocks`, loop controls, Python's string and
//! dict methods, `tojson` as `json.dumps(ensure_ascii=False)`,
//! `raise_exception`, `strftime_now`, and values printed as Python prints
//! them.

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use crate::pyfmt::{json_dumps, py_str, JsonOpts};

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

fn tojson(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(i) if i.is_none() => None,
        Some(i) => match i.as_i64() {
            Some(n) => Some(" ".repeat(n.max(0) as usize)),
            None => Some(i.as_str().unwrap_or_default().to_string()),
        },
    };
    let separators = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(s) if s.len() == 2 => Some((s[0].clone(), s[1].clone())),
        _ => None,
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let _ = kwargs.get::<Option<bool>>("ensure_ascii")?;
    kwargs.assert_all_used()?;
    json_dumps(
        &v,
        &JsonOpts {
            indent,
            separators,
            sort_keys,
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
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
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
        env.add_template_owned(NAME, source.to_string())?;
        let undeclared = env.get_template(NAME)?.undeclared_variables(false);
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
        let mut w = Bounded(Vec::new());
        let chunk = vec![b'a'; 1 << 20];
        let fits = MAX_RENDERED_BYTES / chunk.len();
        for _ in 0..fits {
            std::io::Write::write(&mut w, &chunk).unwrap();
        }
        assert!(std::io::Write::write(&mut w, &chunk).is_err());
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
