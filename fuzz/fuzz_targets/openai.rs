//! Fuzzes OpenAI request bodies (sent by clients, untrusted) through both
//! readers: the scheduler's `Request::from_openai` and the tokenizer's
//! `encode_openai` (message normalisation, a real chat template with tools,
//! tokenization). No input may panic; the first byte picks the endpoint.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmd_sched::Request;
use llmd_tokenize::Tokenizer;

const PATHS: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let json = include_str!("../../testdata/tokenizers/tiny/tokenizer.json");
        let template = include_str!("../../testdata/chat-templates/qwen3.jinja");
        Tokenizer::from_parts(json, &serde_json::Value::Null, Some(template))
            .expect("the tiny tokenizer loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let path = PATHS[first as usize % PATHS.len()];
    let _ = Request::from_openai(path, body);
    let _ = tokenizer().encode_openai(path, body);
});
