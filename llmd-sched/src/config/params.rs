//! Strict decoding of one plugin's `parameters`: every read names its field,
//! and whatever is left unread at the end is an "unknown parameter" error.

use serde_json::{Map, Value};

use crate::error::ConfigError;

/// A plugin's parameters (or a nested object of them) being decoded.
#[derive(Debug)]
pub struct Params {
    plugin: String,
    ty: String,
    prefix: String,
    map: Map<String, Value>,
}

type R<T> = Result<T, ConfigError>;

impl Params {
    /// Wraps `parameters` of plugin `name` of type `ty`; absent or null means `{}`.
    pub fn new(name: &str, ty: &str, value: Option<&Value>) -> R<Self> {
        let map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(ConfigError::plugin(
                    name,
                    ty,
                    Some("parameters"),
                    format!("must be an object, got {}", kind(other)),
                ))
            }
        };
        Ok(Params {
            plugin: name.into(),
            ty: ty.into(),
            prefix: String::new(),
            map,
        })
    }

    /// An error about `field` of this plugin.
    pub fn err(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::plugin(&self.plugin, &self.ty, Some(&self.path(field)), reason)
    }

    /// Plugin instance name.
    pub fn plugin_name(&self) -> &str {
        &self.plugin
    }

    /// Records `field` (if present) as accepted but not executed, with its
    /// dotted path, into `out`.
    pub fn note_not_executed(&self, out: &mut Vec<(String, String)>, field: &str, why: &str) {
        if self.has(field) {
            out.push((self.path(field), why.to_string()));
        }
    }

    fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    /// Removes and returns a raw value (null counts as absent).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    /// The keys not consumed yet (in key order).
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// True when the key is present (without consuming it).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// An optional number.
    pub fn opt_f64(&mut self, key: &str) -> R<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(key, "not a finite number")),
            Some(v) => Err(self.err(key, format!("expected a number, got {}", kind(&v)))),
        }
    }

    /// A number with a default.
    pub fn f64(&mut self, key: &str, default: f64) -> R<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    /// An optional integer (a float with a fractional part is an error).
    pub fn opt_i64(&mut self, key: &str) -> R<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                    _ => Err(self.err(key, format!("expected an integer, got {n}"))),
                },
            },
            Some(v) => Err(self.err(key, format!("expected an integer, got {}", kind(&v)))),
        }
    }

    /// An integer with a default.
    pub fn i64(&mut self, key: &str, default: i64) -> R<i64> {
        Ok(self.opt_i64(key)?.unwrap_or(default))
    }

    /// A boolean with a default.
    pub fn bool(&mut self, key: &str, default: bool) -> R<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self.err(key, format!("expected a boolean, got {}", kind(&v)))),
        }
    }

    /// An optional string.
    pub fn opt_string(&mut self, key: &str) -> R<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, got {}", kind(&v)))),
        }
    }

    /// A string with a default.
    pub fn string(&mut self, key: &str, default: &str) -> R<String> {
        Ok(self.opt_string(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A list of strings (absent = empty).
    pub fn strings(&mut self, key: &str) -> R<Vec<String>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a string, got {}", kind(&other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected a list of strings, got {}", kind(&v)))),
        }
    }

    /// A map of string to string (absent = empty).
    pub fn string_map(&mut self, key: &str) -> R<Vec<(String, String)>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(self.err(
                        &format!("{key}.{k}"),
                        format!("expected a string, got {}", kind(&other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected a map of strings, got {}", kind(&v)))),
        }
    }

    /// A duration (`"2s"`, `"500ms"`, `"1m"`, `"1h30m"`, or a number of seconds), in nanoseconds.
    pub fn opt_duration_ns(&mut self, key: &str) -> R<Option<u64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => parse_duration_ns(&s)
                .map(Some)
                .map_err(|e| self.err(key, e)),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f >= 0.0 => Ok(Some((f * 1e9) as u64)),
                _ => Err(self.err(key, format!("duration must be non-negative, got {n}"))),
            },
            Some(v) => Err(self.err(
                key,
                format!("expected a duration such as \"2s\", got {}", kind(&v)),
            )),
        }
    }

    /// A nested object, decoded with the same strictness.
    pub fn object(&mut self, key: &str) -> R<Option<Params>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params {
                plugin: self.plugin.clone(),
                ty: self.ty.clone(),
                prefix: self.path(key),
                map,
            })),
            Some(v) => Err(self.err(key, format!("expected an object, got {}", kind(&v)))),
        }
    }

    /// A list of nested objects (absent = empty).
    pub fn objects(&mut self, key: &str) -> R<Vec<Params>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(map) => Ok(Params {
                        plugin: self.plugin.clone(),
                        ty: self.ty.clone(),
                        prefix: self.path(&format!("{key}[{i}]")),
                        map,
                    }),
                    other => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected an object, got {}", kind(&other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected a list, got {}", kind(&v)))),
        }
    }

    /// Accepts everything left without interpreting it (plugins the library does not execute).
    pub fn accept_rest(&mut self) {
        self.map.clear();
    }

    /// Fails on any parameter not consumed.
    pub fn finish(self) -> R<()> {
        if let Some(k) = self.map.keys().next() {
            return Err(self.err(k, "unknown parameter"));
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses a Go-style duration (`"300ms"`, `"2s"`, `"1m30s"`, `"1h"`, `"0"`) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let bad = || format!("invalid duration \"{s}\" (expected e.g. \"500ms\", \"2s\", \"1m\")");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        let unit_rest = &rest[num_end..];
        let unit_end = unit_rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(unit_rest.len());
        let mult = match &unit_rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &unit_rest[unit_end..];
    }
    Ok(total as u64)
}
