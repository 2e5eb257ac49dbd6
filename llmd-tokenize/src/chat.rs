//! vLLM's handling of an OpenAI chat request before the template runs
//! (vLLM 0.33.0: `vllm/renderers/chat_utils/chat_message.py`,
//! `vllm/renderers/hf.py`): content format detection, message
//! normalisation, tools as the request model dumps them, the developer
//! role, and the template's keyword arguments.

use minijinja::value::{Value, ValueKind};

use crate::TokenizeError;

/// How a template reads `message.content`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentFormat {
    /// A string: list content is flattened, text parts joined with "\n".
    String,
    /// OpenAI parts: even a string becomes `[{"type": "text", "text": …}]`.
    OpenAi,
}

/// Claude Code's per-request attribution line, dropped from system text.
const BILLING_HEADER: &str = "x-anthropic-billing-header";

/// `{% ... %}` statements of a template, in order, without delimiters;
/// those inside `{# ... #}` comments are not statements (the Jinja parser
/// vLLM walks never sees them).
pub(crate) fn statements(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("{%") {
        if let Some(c) = rest[..i].find("{#") {
            // A comment opens first: skip past its end.
            match rest[c + 2..].find("#}") {
                Some(e) => {
                    rest = &rest[c + 2 + e + 2..];
                    continue;
                }
                None => break,
            }
        }
        let after = &rest[i + 2..];
        let Some(j) = after.find("%}") else { break };
        out.push(after[..j].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()));
        rest = &after[j + 2..];
    }
    out
}

/// The variable an expression reads first (`messages[1:]|x` → `messages`).
fn head(expr: &str) -> &str {
    let e = expr.trim().trim_start_matches('(');
    let end = e
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(e.len());
    &e[..end]
}

/// True when `expr` reads `var`'s `content` (`var['content']`,
/// `var["content"]`, `var.content`, with filters or slices after).
fn reads_content(expr: &str, var: &str) -> bool {
    let e = expr.trim().trim_start_matches('(');
    [
        format!("{var}['content']"),
        format!("{var}[\"content\"]"),
        format!("{var}.content"),
    ]
    .iter()
    .any(|p| {
        e.starts_with(p.as_str())
            && !e[p.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
    })
}

/// vLLM's `_detect_content_format`, over the template's statements: a loop
/// over a messages item's `content` (messages reached through `set`
/// aliases, namespace attributes included), or over a variable named
/// `content` outside a macro, makes it "openai". vLLM walks the Jinja AST;
/// this walks the statements the same way (assignments, then `for` loops),
/// which covers every template shipped with vLLM 0.33.0.
pub fn detect_content_format(src: &str) -> ContentFormat {
    let stmts = statements(src);
    let mut messages = vec!["messages".to_string()];
    let mut changed = true;
    while changed {
        changed = false;
        for s in &stmts {
            let Some(rest) = s.strip_prefix("set ") else {
                continue;
            };
            let Some((lhs, rhs)) = rest.split_once('=') else {
                continue;
            };
            let lhs = lhs.trim();
            let rhs = rhs.trim();
            let mut targets = Vec::new();
            if messages.iter().any(|m| head(rhs) == m) {
                targets.push(lhs.to_string());
            }
            if let Some(args) = rhs.strip_prefix("namespace(") {
                for kv in args.trim_end_matches(')').split(',') {
                    if let Some((k, v)) = kv.split_once('=') {
                        if messages.iter().any(|m| head(v) == m) {
                            targets.push(format!("{lhs}.{}", k.trim()));
                        }
                    }
                }
            }
            for t in targets {
                if !messages.contains(&t) {
                    messages.push(t);
                    changed = true;
                }
            }
        }
    }
    let mut items = Vec::new();
    for s in &stmts {
        if let Some(rest) = s.strip_prefix("for ") {
            if let Some((target, iter)) = rest.split_once(" in ") {
                if messages.iter().any(|m| head(iter) == m) {
                    items.push(target.trim().to_string());
                }
            }
        }
    }
    // Macros: the parameters that some call passes a messages item's
    // `content` (by position or by name), and the loops of each macro.
    let mut macros: Vec<(String, Vec<String>)> = Vec::new();
    for s in &stmts {
        if let Some(sig) = s.strip_prefix("macro ") {
            if let Some((name, params)) = sig.split_once('(') {
                let params = top_level_args(params)
                    .iter()
                    .map(|p| head(p.split('=').next().unwrap_or_default()).to_string())
                    .collect();
                macros.push((name.trim().to_string(), params));
            }
        }
    }
    let content_params: Vec<Vec<String>> = macros
        .iter()
        .map(|(name, params)| {
            let mut out = Vec::new();
            for args in calls(src, name) {
                for (i, a) in args.iter().enumerate() {
                    let (param, value) = match a.split_once('=') {
                        Some((k, v)) if is_ident(k.trim()) && !v.starts_with('=') => {
                            (k.trim().to_string(), v)
                        }
                        _ => match params.get(i) {
                            Some(p) => (p.clone(), a.as_str()),
                            None => continue,
                        },
                    };
                    if params.contains(&param)
                        && items.iter().any(|m| reads_content(value, m))
                        && !out.contains(&param)
                    {
                        out.push(param);
                    }
                }
            }
            out
        })
        .collect();
    let mut open: Vec<usize> = Vec::new();
    let mut next_macro = 0usize;
    for s in &stmts {
        if s.starts_with("macro ") {
            open.push(next_macro);
            next_macro += 1;
        } else if s.starts_with("endmacro") {
            open.pop();
        } else if let Some(rest) = s.strip_prefix("for ") {
            if let Some((_, iter)) = rest.split_once(" in ") {
                let bound = open
                    .last()
                    .and_then(|&m| content_params.get(m))
                    .is_some_and(|ps| ps.iter().any(|p| iter.trim() == p));
                if items.iter().any(|m| reads_content(iter, m))
                    || bound
                    || (open.is_empty() && head(iter) == "content")
                {
                    return ContentFormat::OpenAi;
                }
            }
        }
    }
    ContentFormat::String
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The arguments of `text` up to its closing parenthesis, split at
/// top-level commas (brackets and quotes respected), trimmed.
fn top_level_args(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut cur) = (0usize, None::<char>, String::new());
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')') if depth == 0 => break,
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The argument lists of every call of macro `name` in `src` (not its
/// definition).
fn calls(src: &str, name: &str) -> Vec<Vec<String>> {
    let pat = format!("{name}(");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = src[from..].find(&pat) {
        let at = from + i;
        from = at + pat.len();
        let before = src[..at].trim_end();
        let ident_before = src[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        if ident_before || before.ends_with("macro") {
            continue;
        }
        out.push(top_level_args(&src[from..]));
    }
    out
}

/// A map keeping `pairs` in order.
fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::from_iter(pairs.into_iter().map(|(k, v)| (Value::from(k), v)))
}

/// A map's (key, value) pairs in order; empty for anything else.
pub(crate) fn map_pairs(v: &Value) -> Vec<(Value, Value)> {
    v.try_iter()
        .map(|it| {
            it.map(|k| {
                let val = v.get_item(&k).unwrap_or_default();
                (k, val)
            })
            .collect()
        })
        .unwrap_or_default()
}

/// `v[k]` of a map, when present and defined.
pub(crate) fn field(v: &Value, k: &str) -> Option<Value> {
    if v.kind() != ValueKind::Map {
        return None;
    }
    v.get_item(&Value::from(k))
        .ok()
        .filter(|x| !x.is_undefined())
}

/// One parsed content part (`parse_chat_message_content_part`): text, or
/// a deferred-tool reference the template expands.
enum Part {
    Text(String),
    ToolReference(String),
}

use llmd_sched::model::openai::{MEDIA_KEYS, MEDIA_TYPES};

fn multimodal(kind: &str) -> TokenizeError {
    TokenizeError::Request(format!(
        "content part type '{kind}' is not supported (text only; multimodal inputs need the engine's processor)"
    ))
}

/// A part's text field. vLLM's request model requires a string: a part
/// without one fails validation (or degrades to an untyped part that its
/// parser then refuses).
fn text_field(p: &Value, k: &str) -> Result<String, TokenizeError> {
    field(p, k)
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| TokenizeError::Request(format!("a content part's '{k}' must be a string")))
}

/// `parse_chat_message_content_mm_part` and `parse_chat_message_content_part`
/// for the part types that carry text.
fn part(p: &Value) -> Result<Part, TokenizeError> {
    match p.kind() {
        ValueKind::String => return Ok(Part::Text(p.as_str().unwrap_or_default().to_string())),
        ValueKind::Map => {}
        _ => {
            return Err(TokenizeError::Request(
                "content parts must be objects or strings".into(),
            ))
        }
    }
    let ty = field(p, "type").filter(|t| !t.is_none());
    let uuid = field(p, "uuid").filter(|u| !u.is_none());
    let ty = match ty {
        Some(t) if uuid.is_none() => t,
        _ => {
            // No type (or a media uuid): the part's media key names it.
            if let Some(k) = MEDIA_KEYS.iter().find(|k| field(p, k).is_some()) {
                return Err(multimodal(k));
            }
            if field(p, "tool_reference").is_some() {
                return Ok(Part::ToolReference(text_field(p, "name")?));
            }
            return Err(TokenizeError::Request(
                "Missing 'type' field in multimodal part.".into(),
            ));
        }
    };
    let Some(ty) = ty.as_str() else {
        return Err(TokenizeError::Request(
            "Invalid 'type' field in multimodal part.".into(),
        ));
    };
    Ok(match ty {
        "text" => Part::Text(text_field(p, "text")?),
        "refusal" => Part::Text(text_field(p, "refusal")?),
        // The Responses API's text parts: vLLM's parser reads them, but its
        // chat request model refuses them first.
        "input_text" | "output_text" => {
            return Err(TokenizeError::Request(format!(
                "content part type '{ty}' is not accepted by chat completions"
            )))
        }
        "thinking" => Part::Text(text_field(p, "thinking")?),
        "tool_reference" => Part::ToolReference(text_field(p, "name")?),
        t if MEDIA_TYPES.contains(&t) => return Err(multimodal(t)),
        t => {
            return Err(TokenizeError::Request(format!(
                "Unsupported chat content part type: '{t}'"
            )))
        }
    })
}

/// Claude Code's attribution line dropped from a system message's text
/// parts (`_strip_claude_code_billing_header`); a part left empty goes.
fn strip_billing_header(parts: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let text = match p.kind() {
            ValueKind::String => p.as_str().map(str::to_string),
            ValueKind::Map
                if field(&p, "type").and_then(|t| t.as_str().map(|t| t == "text"))
                    == Some(true) =>
            {
                field(&p, "text").and_then(|t| t.as_str().map(str::to_string))
            }
            _ => None,
        };
        let Some(text) = text.filter(|t| t.starts_with(BILLING_HEADER)) else {
            out.push(p);
            continue;
        };
        let rest = text.split_once('\n').map_or("", |(_, r)| r);
        if rest.is_empty() {
            continue;
        }
        out.push(if p.kind() == ValueKind::String {
            Value::from(rest)
        } else {
            Value::from_iter(map_pairs(&p).into_iter().map(|(k, v)| {
                if k.as_str() == Some("text") {
                    (k, Value::from(rest))
                } else {
                    (k, v)
                }
            }))
        });
    }
    out
}

/// A message's content as the template sees it (`parse_chat_message_content`
/// and, for tool messages, its list-to-string rule).
fn content(c: Option<Value>, role: &str, format: ContentFormat) -> Result<Value, TokenizeError> {
    let mut parts: Vec<Value> = match c {
        None => Vec::new(),
        // vLLM's request model allows null content on assistant messages only.
        Some(c) if c.is_none() && role == "assistant" => Vec::new(),
        Some(c) if c.is_none() => {
            return Err(TokenizeError::Request(format!(
                "content of a {role} message must not be null"
            )))
        }
        Some(c) if c.kind() == ValueKind::String => {
            vec![obj([("type", Value::from("text")), ("text", c)])]
        }
        Some(c) if c.kind() == ValueKind::Seq => {
            c.try_iter().map(|i| i.collect()).unwrap_or_default()
        }
        Some(_) => {
            return Err(TokenizeError::Request(format!(
                "content of a {role} message must be a string, a list of parts or null"
            )))
        }
    };
    let given = parts.len();
    if role == "system" {
        parts = strip_billing_header(parts);
    }
    // Errors name the part (when the billing header dropped none, the
    // indices are the request's).
    let named = parts.len() == given;
    let parsed = parts
        .iter()
        .enumerate()
        .map(|(k, p)| {
            part(p).map_err(|e| match e {
                TokenizeError::Request(m) if named => {
                    TokenizeError::Request(format!("content[{k}]: {m}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = parsed.into_iter();
    if format == ContentFormat::String {
        // Parts are kept when truthy: empty texts go.
        let texts: Vec<String> = parsed
            .filter_map(|p| match p {
                Part::Text(t) | Part::ToolReference(t) => Some(t).filter(|t| !t.is_empty()),
            })
            .collect();
        return Ok(Value::from(texts.join("\n")));
    }
    let items: Vec<Value> = parsed
        .map(|p| match p {
            Part::Text(t) => obj([("type", Value::from("text")), ("text", Value::from(t))]),
            Part::ToolReference(n) => obj([
                ("type", Value::from("tool_reference")),
                ("name", Value::from(n)),
            ]),
        })
        .collect();
    if role == "tool" {
        // Text-only tool results are joined into a string; a tool
        // reference keeps the list for the template to expand.
        let text_only = items
            .iter()
            .all(|i| field(i, "type").and_then(|t| t.as_str().map(|t| t == "text")) == Some(true));
        if text_only {
            let texts: Vec<String> = items
                .iter()
                .map(|i| field(i, "text").map(|t| t.to_string()).unwrap_or_default())
                .collect();
            return Ok(Value::from(texts.join("\n")));
        }
    }
    Ok(Value::from(items))
}

fn tool_call(item: &Value) -> Result<Value, TokenizeError> {
    if item.kind() != ValueKind::Map {
        return Err(TokenizeError::Request(
            "assistant tool_calls entries must be objects".into(),
        ));
    }
    let f = field(item, "function").filter(|f| f.kind() == ValueKind::Map);
    let ty = field(item, "type")
        .map(|t| t.to_string())
        .unwrap_or_else(|| "function".into());
    let Some(f) = f.filter(|_| ty == "function") else {
        return Err(TokenizeError::Request(
            "chat completions only support assistant tool_calls of type 'function'".into(),
        ));
    };
    // The request model requires string `id`, `name` and `arguments`.
    let string = |v: &Value, k: &str, what: &str| {
        field(v, k)
            .filter(|x| x.kind() == ValueKind::String)
            .ok_or_else(|| {
                TokenizeError::Request(format!("assistant tool_calls: {what} must be a string"))
            })
    };
    let id = string(item, "id", "'id'")?;
    let name = string(&f, "name", "'function.name'")?;
    let args = string(&f, "arguments", "'function.arguments'")?;
    // `_postprocess_messages`: arguments become a mapping, `{}` when empty
    // or not a JSON object.
    // Parsed as Python's `json.loads` (`NaN`, integers of any size, a
    // repeated key's last value); a value it cannot hold exactly is
    // `NotExact`.
    let args = match crate::pyjson::loads(args.as_str().unwrap_or_default()) {
        Ok(v) if v.kind() == ValueKind::Map => v,
        Ok(_) | Err(crate::pyjson::Loads::Invalid) => {
            Value::from_iter(Vec::<(Value, Value)>::new())
        }
        Err(crate::pyjson::Loads::NotExact(why)) => {
            return Err(TokenizeError::NotExact(why.to_string()))
        }
    };
    let func = obj([("arguments", args), ("name", name)]);
    Ok(obj([
        ("id", id),
        ("function", func),
        ("type", Value::from("function")),
    ]))
}

/// The conversation vLLM hands the template (`parse_chat_message_content`
/// and `_postprocess_messages`), then the developer-role rule of
/// `safe_apply_chat_template`.
pub fn normalize_messages(
    messages: &Value,
    format: ContentFormat,
    template: &str,
) -> Result<Vec<Value>, TokenizeError> {
    if messages.kind() != ValueKind::Seq {
        return Err(TokenizeError::Request("'messages' must be a list".into()));
    }
    // transformers refuses to render an empty conversation (vLLM answers 400).
    if messages.len() == Some(0) {
        return Err(TokenizeError::Request(
            "'messages' must contain at least one message".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, m) in messages
        .try_iter()
        .map_err(|e| TokenizeError::Request(e.to_string()))?
        .enumerate()
    {
        if m.kind() != ValueKind::Map {
            return Err(TokenizeError::Request(format!(
                "messages[{i}] must be an object"
            )));
        }
        let role = field(&m, "role")
            .and_then(|r| r.as_str().map(str::to_string))
            .ok_or_else(|| TokenizeError::Request(format!("messages[{i}].role is required")))?;
        let content = content(field(&m, "content"), &role, format).map_err(|e| match e {
            TokenizeError::Request(m) => TokenizeError::Request(format!("messages[{i}]: {m}")),
            other => other,
        })?;
        let mut r: Vec<(Value, Value)> = vec![(Value::from("role"), Value::from(role.as_str()))];
        r.push((Value::from("content"), content));
        // An assistant message with null content validates only as OpenAI's
        // assistant message, which has no reasoning or task: vLLM drops them.
        let null_content = field(&m, "content").is_some_and(|c| c.is_none());
        if role == "assistant" {
            if let Some(calls) = field(&m, "tool_calls").filter(|c| c.kind() == ValueKind::Seq) {
                if calls.len().unwrap_or(0) > 0 {
                    let calls = calls
                        .try_iter()
                        .map_err(|e| TokenizeError::Request(e.to_string()))?
                        .enumerate()
                        .map(|(j, c)| {
                            tool_call(&c).map_err(|e| match e {
                                TokenizeError::Request(m) => TokenizeError::Request(format!(
                                    "messages[{i}].tool_calls[{j}]: {m}"
                                )),
                                other => other,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    r.push((Value::from("tool_calls"), Value::from(calls)));
                }
            }
            let reasoning = field(&m, "reasoning")
                .filter(|v| !v.is_none())
                .or_else(|| field(&m, "reasoning_content").filter(|v| !v.is_none()))
                .filter(|_| !null_content);
            if let Some(rs) = reasoning {
                r.push((Value::from("reasoning"), rs.clone()));
                r.push((Value::from("reasoning_content"), rs));
            }
        } else if role == "tool" {
            if let Some(id) = field(&m, "tool_call_id") {
                r.push((Value::from("tool_call_id"), id));
            }
        }
        for k in ["name", "task"] {
            if k == "task" && role == "assistant" && null_content {
                continue;
            }
            if let Some(v) = field(&m, k).filter(|v| v.kind() == ValueKind::String) {
                r.push((Value::from(k), v));
            }
        }
        if role == "developer" {
            r.push((
                Value::from("tools"),
                field(&m, "tools").unwrap_or(Value::from(())),
            ));
        }
        out.push(Value::from_iter(r));
    }
    let role_of = |m: &Value| field(m, "role").map(|r| r.to_string()).unwrap_or_default();
    let has_developer = out.iter().any(|m| role_of(m) == "developer");
    if has_developer && !template.contains("\"developer\"") && !template.contains("'developer'") {
        out = out
            .into_iter()
            .map(|m| {
                if role_of(&m) != "developer" {
                    return m;
                }
                Value::from_iter(
                    map_pairs(&m)
                        .into_iter()
                        .filter(|(k, _)| k.as_str() != Some("tools"))
                        .map(|(k, v)| {
                            if k.as_str() == Some("role") {
                                (k, Value::from("system"))
                            } else {
                                (k, v)
                            }
                        }),
                )
            })
            .collect();
        out = consolidate_system(out);
    }
    Ok(out)
}

/// All system messages merged into one first message ("\n\n" between
/// their texts) when any stands past the first position.
fn consolidate_system(conv: Vec<Value>) -> Vec<Value> {
    let mut texts = Vec::new();
    let mut rest = Vec::new();
    let mut needed = false;
    for (i, m) in conv.iter().enumerate() {
        if field(m, "role").map(|r| r.to_string()).as_deref() == Some("system") {
            if i > 0 || !texts.is_empty() {
                needed = true;
            }
            let c = field(m, "content").unwrap_or_default();
            let t = match c.kind() {
                ValueKind::Seq => c
                    .try_iter()
                    .map(|it| {
                        it.filter_map(|p| match p.kind() {
                            ValueKind::String => Some(p.to_string()),
                            ValueKind::Map => field(&p, "text").map(|t| t.to_string()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                    })
                    .unwrap_or_default(),
                ValueKind::String => c.to_string(),
                _ => String::new(),
            };
            if !t.is_empty() {
                texts.push(t);
            }
        } else {
            rest.push(m.clone());
        }
    }
    if !needed {
        return conv;
    }
    let mut out = vec![obj([
        ("role", Value::from("system")),
        ("content", Value::from(texts.join("\n\n"))),
    ])];
    out.extend(rest);
    out
}

/// Tools as vLLM's request model dumps them: `type`, then `function` with
/// `name`, `description` and `parameters` (null when absent), `strict` and
/// `defer_loading` only when set.
pub fn normalize_tools(tools: &Value) -> Result<Vec<Value>, TokenizeError> {
    if tools.kind() != ValueKind::Seq {
        return Err(TokenizeError::Request("'tools' must be a list".into()));
    }
    let mut out = Vec::new();
    for (i, t) in tools
        .try_iter()
        .map_err(|e| TokenizeError::Request(e.to_string()))?
        .enumerate()
    {
        let f = field(&t, "function")
            .filter(|f| f.kind() == ValueKind::Map)
            .ok_or_else(|| TokenizeError::Request(format!("tools[{i}].function is required")))?;
        let name = field(&f, "name")
            .filter(|n| n.kind() == ValueKind::String)
            .ok_or_else(|| {
                TokenizeError::Request(format!("tools[{i}].function.name is required"))
            })?;
        let mut func = vec![
            (Value::from("name"), name),
            (
                Value::from("description"),
                field(&f, "description").unwrap_or(Value::from(())),
            ),
            (
                Value::from("parameters"),
                field(&f, "parameters").unwrap_or(Value::from(())),
            ),
        ];
        let tool_defer = field(&t, "defer_loading").filter(|v| !v.is_none());
        if let Some(v) = field(&f, "strict").filter(|v| !v.is_none()) {
            func.push((Value::from("strict"), v));
        }
        // The tool's `defer_loading` reaches its function when the function
        // sets none (`ChatCompletionToolsParam._propagate_defer_loading`).
        if let Some(v) = field(&f, "defer_loading")
            .filter(|v| !v.is_none())
            .or_else(|| tool_defer.clone())
        {
            func.push((Value::from("defer_loading"), v));
        }
        let mut tool = vec![
            (Value::from("type"), Value::from("function")),
            (Value::from("function"), Value::from_iter(func)),
        ];
        if let Some(v) = tool_defer {
            tool.push((Value::from("defer_loading"), v));
        }
        out.push(Value::from_iter(tool));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_format_follows_the_loops() {
        assert_eq!(
            detect_content_format("{% for m in messages %}{{ m['content'] }}{% endfor %}"),
            ContentFormat::String
        );
        assert_eq!(
            detect_content_format("{% set msgs = messages[1:] %}{% for m in msgs %}{% for c in m['content'] %}{{ c.text }}{% endfor %}{% endfor %}"),
            ContentFormat::OpenAi
        );
        assert_eq!(
            detect_content_format("{%- for message in messages -%}{%- for part in message.content | selectattr('type') -%}x{% endfor %}{% endfor %}"),
            ContentFormat::OpenAi
        );
        assert_eq!(
            detect_content_format(
                "{% macro r(content) %}{% for c in content %}{% endfor %}{% endmacro %}"
            ),
            ContentFormat::String
        );
        // A loop inside a comment is no loop; one after it still is.
        let commented = "{# {% for c in message['content'] %}{% endfor %} #}{% for m in messages %}{{ m['content'] }}{% endfor %}";
        assert_eq!(detect_content_format(commented), ContentFormat::String);
        let after = format!("{commented}{{% for m in messages %}}{{% for c in m.content %}}{{% endfor %}}{{% endfor %}}");
        assert_eq!(detect_content_format(&after), ContentFormat::OpenAi);
    }

    #[test]
    fn tool_call_arguments_are_read_as_python_json_loads_reads_them() {
        let call = |args: &str| -> Result<String, TokenizeError> {
            let msgs = Value::from(vec![obj([
                ("role", Value::from("assistant")),
                ("content", Value::from(())),
                (
                    "tool_calls",
                    Value::from(vec![obj([
                        ("id", Value::from("c")),
                        (
                            "function",
                            obj([("name", Value::from("f")), ("arguments", Value::from(args))]),
                        ),
                    ])]),
                ),
            ])]);
            let out = normalize_messages(&msgs, ContentFormat::String, "")?;
            let calls = out[0].get_attr("tool_calls").unwrap();
            let f = calls
                .get_item(&Value::from(0))
                .unwrap()
                .get_attr("function")
                .unwrap();
            Ok(
                crate::pyfmt::json_dumps(&f.get_attr("arguments").unwrap(), &Default::default())
                    .unwrap(),
            )
        };
        // json.dumps(json.loads(args)), from Python 3.11.
        assert_eq!(
            call(r#"{"x": NaN, "n": 123456789012345678901234567890, "z": -0, "x": 1e400}"#)
                .unwrap(),
            r#"{"x": Infinity, "n": 123456789012345678901234567890, "z": 0}"#
        );
        // Not JSON, or not an object: `{}`.
        assert_eq!(call("{'x': 1}").unwrap(), "{}");
        assert_eq!(call("[1]").unwrap(), "{}");
        // What Python holds and a template value cannot.
        assert!(matches!(
            call(r#"{"s": "\ud800"}"#),
            Err(TokenizeError::NotExact(_))
        ));
        let huge = format!(r#"{{"n": {}}}"#, "1".repeat(60));
        assert!(matches!(call(&huge), Err(TokenizeError::NotExact(_))));
    }

    #[test]
    fn messages_as_vllm_builds_them() {
        let msgs: Value = serde_json::from_str(r#"[
            {"role": "system", "content": [{"type": "text", "text": "x-anthropic-billing-header: cch=1\nbe nice"}]},
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "id": "c1", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]}
        ]"#).unwrap();
        let out = normalize_messages(&msgs, ContentFormat::String, "").unwrap();
        let json = |v: &Value| crate::pyfmt::json_dumps(v, &Default::default()).unwrap();
        assert_eq!(
            json(&out[0]),
            r#"{"role": "system", "content": "be nice\n\ndev"}"#
        );
        assert_eq!(out[1].get_attr("content").unwrap().to_string(), "a\nb");
        assert_eq!(
            json(&out[2].get_attr("tool_calls").unwrap()),
            r#"[{"id": "c1", "function": {"arguments": {"x": 1}, "name": "f"}, "type": "function"}]"#
        );
        assert_eq!(out[3].get_attr("content").unwrap().to_string(), "r");
        let oa = normalize_messages(&msgs, ContentFormat::OpenAi, "'developer'").unwrap();
        assert_eq!(oa[1].get_attr("role").unwrap().to_string(), "developer");
        assert_eq!(
            json(&oa[2].get_attr("content").unwrap()),
            r#"[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]"#
        );
        let img: Value =
            serde_json::from_str(r#"[{"role": "user", "content": [{"type": "image_url"}]}]"#)
                .unwrap();
        assert!(normalize_messages(&img, ContentFormat::String, "").is_err());
        let tools: Value = serde_json::from_str(
            r#"[{"type": "function", "function": {"name": "f", "extra": 1}}]"#,
        )
        .unwrap();
        assert_eq!(
            json(&Value::from(normalize_tools(&tools).unwrap())),
            r#"[{"type": "function", "function": {"name": "f", "description": null, "parameters": null}}]"#
        );
    }

    #[test]
    fn parts_and_fields_as_vllm_0_33_takes_them() {
        let norm = |j: &str, f| normalize_messages(&serde_json::from_str(j).unwrap(), f, "");
        let json = |v: &Value| crate::pyfmt::json_dumps(v, &Default::default()).unwrap();
        // String format: text-like parts join with "\n"; empty ones go.
        let out = norm(
            r#"[{"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": ""}, {"type": "refusal", "refusal": "r"}, "s"]}]"#,
            ContentFormat::String,
        )
        .unwrap();
        assert_eq!(out[0].get_attr("content").unwrap().to_string(), "t\nr\ns");
        // OpenAI format keeps every part, as text parts.
        let out = norm(
            r#"[{"role": "user", "content": [{"type": "text", "text": ""}, {"type": "thinking", "thinking": "t"}]}]"#,
            ContentFormat::OpenAi,
        )
        .unwrap();
        assert_eq!(
            json(&out[0].get_attr("content").unwrap()),
            r#"[{"type": "text", "text": ""}, {"type": "text", "text": "t"}]"#
        );
        // A null-content assistant message validates as OpenAI's: no reasoning.
        let out = norm(
            r#"[{"role": "assistant", "content": null, "reasoning": "why", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, {"role": "assistant", "content": "a", "reasoning_content": "why"}]"#,
            ContentFormat::String,
        )
        .unwrap();
        assert!(out[0].get_attr("reasoning").unwrap().is_undefined());
        assert_eq!(out[1].get_attr("reasoning").unwrap().to_string(), "why");
        // What vLLM refuses, with the field named.
        for (bad, why) in [
            (
                r#"[{"role": "user", "content": [{"text": "x"}]}]"#,
                "Missing 'type'",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "text", "text": null}]}]"#,
                "'text' must be a string",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]"#,
                "input_text",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "x"}}]}]"#,
                "multimodal",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "bogus"}]}]"#,
                "Unsupported",
            ),
            (r#"[{"role": "user", "content": null}]"#, "must not be null"),
            (
                r#"[{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}]}]"#,
                "arguments",
            ),
        ] {
            let e = norm(bad, ContentFormat::String).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
