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

/// Renders chat `messages` with the pods' template: one
/// `<|role|> content <|end|>` run per message, and `<|assistant|>` when a
/// generation prompt is asked for. Content may be a string or a list of
/// `{"type": "text", "text": ...}` parts.
pub fn render_chat(messages: &Value, add_generation_prompt: bool) -> Result<String, String> {
    let list = messages.as_array().ok_or("'messages' must be a list")?;
    let mut out = String::new();
    for m in list {
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
        out.push_str(&format!("<|{role}|> {content} <|end|> "));
    }
    if add_generation_prompt {
        out.push_str("<|assistant|>");
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
        let chat =
            serde_json::json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]);
        assert_eq!(
            render_chat(&chat, true).unwrap(),
            "<|user|> hi <|end|> <|assistant|>"
        );
        assert!(render_chat(&serde_json::json!({}), true).is_err());
    }
}
