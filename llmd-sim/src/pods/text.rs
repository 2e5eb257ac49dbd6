//! The fake pods' tokenizer and chat template: deterministic, so a router
//! that tokenizes through a pod's `/tokenize` gets exactly the ids the pod's
//! engine hashes. Not a real model's tokenizer (that is the job of the
//! tokenizer component); it only has to agree with itself.

use serde_json::Value;

/// Ids below this are reserved (specials).
const FIRST_WORD_ID: u32 = 256;

/// Token ids of `text`: one per whitespace-separated word, from a hash of
/// the word into `[256, vocab)`.
pub fn tokenize(text: &str, vocab: u32) -> Vec<u32> {
    let span = vocab.saturating_sub(FIRST_WORD_ID).max(1) as u64;
    text.split_whitespace()
        .map(|w| FIRST_WORD_ID + (xxhash_rust::xxh3::xxh3_64(w.as_bytes()) % span) as u32)
        .collect()
}

/// The text of an output token id.
pub fn detokenize(id: u32) -> String {
    format!(" t{id}")
}

/// Renders a chat request with the pods' template, reading the fields
/// vLLM's chat template sees (those its `/tokenize` takes too):
///
/// * `tools`: `<|tools|> <tool> ... <|end|>` first, each tool as its compact
///   JSON (one word);
/// * `messages`: one `<|role|> content <|end|>` run per message (content a
///   string or a list of `{"type": "text", "text": ...}` parts);
///   `continue_final_message` leaves the last one open (no `<|end|>`);
/// * `add_generation_prompt` (default true): `<|assistant|>`, then
///   `<think> </think>` when `chat_template_kwargs.enable_thinking` is false
///   (as Qwen3's template closes an empty thinking block).
///
/// Setting both `add_generation_prompt` and `continue_final_message` is an
/// error, as in vLLM.
pub fn render_chat(body: &Value) -> Result<String, String> {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool);
    let (add, cont) = (
        flag("add_generation_prompt"),
        flag("continue_final_message"),
    );
    if add == Some(true) && cont == Some(true) {
        return Err(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.".into(),
        );
    }
    let cont = cont.unwrap_or(false);
    let add = add.unwrap_or(true);
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("'messages' must be a list")?;
    let mut out = String::new();
    match body.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            out.push_str("<|tools|> ");
            for t in tools {
                out.push_str(&t.to_string().replace(char::is_whitespace, ""));
                out.push(' ');
            }
            out.push_str("<|end|> ");
        }
        Some(_) => return Err("'tools' must be a list".into()),
    }
    for (k, m) in list.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or("every message needs a 'role'")?;
        let content = match m.get("content") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            Some(_) => return Err("'content' must be a string or a list of parts".into()),
        };
        out.push_str(&format!("<|{role}|> {content} "));
        if !(cont && k + 1 == list.len()) {
            out.push_str("<|end|> ");
        }
    }
    if add {
        out.push_str("<|assistant|>");
        let thinking = body
            .get("chat_template_kwargs")
            .and_then(|k| k.get("enable_thinking"))
            .and_then(Value::as_bool);
        if thinking == Some(false) {
            out.push_str(" <think> </think>");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let a = tokenize("the cat  sat", 1000);
        assert_eq!(a, tokenize("the cat sat", 1000));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|&t| (256..1000).contains(&t)));
        let chat = serde_json::json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
        assert_eq!(
            render_chat(&chat).unwrap(),
            "<|user|> hi <|end|> <|assistant|>"
        );
        assert!(render_chat(&serde_json::json!({})).is_err());
    }

    #[test]
    fn renders_what_the_template_sees() {
        let body = serde_json::json!({
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "I am"}],
            "tools": [{"type": "function", "function": {"name": "get weather"}}],
            "add_generation_prompt": false,
            "continue_final_message": true,
        });
        assert_eq!(
            render_chat(&body).unwrap(),
            r#"<|tools|> {"function":{"name":"getweather"},"type":"function"} <|end|> <|user|> hi <|end|> <|assistant|> I am "#
        );
        let body = serde_json::json!({
            "messages": [{"role": "user", "content": "hi"}],
            "chat_template_kwargs": {"enable_thinking": false},
        });
        assert_eq!(
            render_chat(&body).unwrap(),
            "<|user|> hi <|end|> <|assistant|> <think> </think>"
        );
        let both = serde_json::json!({
            "messages": [], "add_generation_prompt": true, "continue_final_message": true,
        });
        assert!(render_chat(&both)
            .unwrap_err()
            .contains("continue_final_message"));
        let bad = serde_json::json!({"messages": [], "tools": {}});
        assert!(render_chat(&bad).is_err());
    }
}
