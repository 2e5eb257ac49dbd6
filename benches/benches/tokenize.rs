//! Tokenization targets (issue: requests as gateways receive them):
//! - an 8k-token prompt through `llmd_tokenize::Tokenizer::encode` vs the
//!   `tokenizers` crate's own `encode` (and `encode_fast`) on the same text;
//! - a chat of ~8k tokens: template rendering + encoding vs encoding the
//!   already-rendered string (what the template and glue add);
//! - `Scheduler::pick_openai` on that chat body at 100 endpoints, split
//!   into tokenization and decision.
//!
//! The tokenizer is a byte-level BPE (vocab 8,000) trained here on a
//! synthetic Zipf-like corpus; the template is ChatML from vLLM's examples.
//! Alternating rounds, medians; one line per measure
//! (`cargo bench -p llmd-benches --bench tokenize`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use llmd_sched::{Endpoint, Scheduler};
use llmd_tokenize::{ChatOptions, Tokenizer};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

fn word(i: u64) -> String {
    // Zipf-ish: small ids are frequent.
    let mut z = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 29;
    let rank = (z % 1000) * (z % 1000) / 1000;
    format!(
        "w{}{}",
        rank,
        ["", "ing", "ed", "s", "tion"][(z % 5) as usize]
    )
}

fn text(n: usize, seed: u64) -> String {
    (0..n as u64)
        .map(|i| word(i * 7919 + seed))
        .collect::<Vec<_>>()
        .join(" ")
}

fn build() -> (Tokenizer, tokenizers::Tokenizer) {
    let dir = std::env::temp_dir().join(format!("llmd-tok-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    std::fs::write(
        &corpus,
        (0..2000)
            .map(|s| text(200, s))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let mut tok = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None::<tokenizers::NormalizerWrapper>)
        .with_pre_tokenizer(Some(ByteLevel::default()))
        .with_post_processor(None::<tokenizers::PostProcessorWrapper>)
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .unwrap();
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(8000)
        .special_tokens(vec![
            AddedToken::from("<|im_start|>".to_string(), true),
            AddedToken::from("<|im_end|>".to_string(), true),
        ])
        .build();
    tok.train_from_files(&mut trainer, vec![corpus.display().to_string()])
        .unwrap();
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    std::fs::write(
        dir.join("chat_template.jinja"),
        include_str!("../../testdata/chat-templates/template_chatml.jinja"),
    )
    .unwrap();
    let ours = Tokenizer::from_dir(&dir).unwrap();
    let theirs = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    (ours, theirs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    t0.elapsed().as_secs_f64() / n as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (ours, theirs) = build();
    // An ~8k-token prompt.
    let mut prompt = text(3000, 1);
    while ours.encode(&prompt, true).unwrap().len() < 8192 {
        prompt.push(' ');
        prompt.push_str(&text(200, prompt.len() as u64));
    }
    let n_tokens = ours.encode(&prompt, true).unwrap().len();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(time(20, || ours.encode(&prompt, true).unwrap()));
        b.push(time(20, || theirs.encode(prompt.as_str(), true).unwrap()));
        c.push(time(20, || {
            theirs.encode_fast(prompt.as_str(), true).unwrap()
        }));
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!(
        "encode {n_tokens} tokens: llmd {:.0} us, tokenizers encode {:.0} us (ratio {:.2}), encode_fast {:.0} us (ratio {:.2})",
        a * 1e6,
        b * 1e6,
        a / b,
        c * 1e6,
        a / c
    );

    // A chat of the same size: system + 6 turns.
    let mut msgs = vec![serde_json::json!({"role": "system", "content": text(400, 9)})];
    let per = prompt.split(' ').count() / 6;
    for t in 0..6 {
        let role = if t % 2 == 0 { "user" } else { "assistant" };
        msgs.push(serde_json::json!({"role": role, "content": text(per, 100 + t)}));
    }
    let messages = serde_json::Value::Array(msgs.clone()).to_string();
    let opts = ChatOptions::default();
    let rendered = ours.render_chat(&messages, &opts).unwrap();
    let chat_tokens = ours.encode_chat(&messages, &opts).unwrap().len();
    let (mut full, mut enc) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        full.push(time(20, || ours.encode_chat(&messages, &opts).unwrap()));
        enc.push(time(20, || ours.encode(&rendered, false).unwrap()));
    }
    let (full, enc) = (median(full), median(enc));
    println!(
        "chat of {chat_tokens} tokens: render + encode {:.0} us, encode of the rendered text {:.0} us (template and glue {:.1} %)",
        full * 1e6,
        enc * 1e6,
        (full / enc - 1.0) * 100.0
    );

    // A new 200-token turn on that ~9.6k-token session.
    let mut session = llmd_tokenize::ChatSession::new();
    session.encode_chat(&ours, &messages, &opts).unwrap();
    let mut longer = msgs.clone();
    longer.push(serde_json::json!({"role": "assistant", "content": text(35, 7)}));
    longer.push(serde_json::json!({"role": "user", "content": text(35, 8)}));
    let longer = serde_json::Value::Array(longer).to_string();
    let added = ours.encode_chat(&longer, &opts).unwrap().len() - chat_tokens;
    let (mut inc, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        inc.push(time(20, || {
            let mut s = session.clone();
            s.encode_chat(&ours, &longer, &opts).unwrap()
        }));
        whole.push(time(20, || ours.encode_chat(&longer, &opts).unwrap()));
    }
    let (inc, whole) = (median(inc), median(whole));
    println!(
        "session: a {added}-token turn on {chat_tokens} tokens: {:.0} us incremental vs {:.0} us full ({:.1} %)",
        inc * 1e6,
        whole * 1e6,
        inc / whole * 100.0
    );

    // pick_openai at 100 endpoints.
    let s = Scheduler::from_config_str("apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\n").unwrap();
    for i in 0..100 {
        s.add_endpoint(Endpoint::new(
            format!("p{i}"),
            format!("10.0.{}.{}:8000", i / 200, i % 200 + 1),
        ))
        .unwrap();
    }
    s.set_tokenizer("m", Arc::new(ours.clone()));
    let body = serde_json::json!({"model": "m", "messages": msgs}).to_string();
    let ids = ours.encode_chat(&messages, &opts).unwrap();
    let h = BTreeMap::new();
    let mut n = 0u64;
    let (mut whole, mut pick_only, mut tok_only) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        whole.push(time(20, || {
            n += 1;
            let id = format!("o{n}");
            let d = s
                .pick_openai(&id, "/v1/chat/completions", body.as_bytes(), &h)
                .unwrap();
            s.on_error(&id, llmd_sched::RequestErrorKind::Cancelled);
            d
        }));
        pick_only.push(time(20, || {
            n += 1;
            let id = format!("t{n}");
            let d = s
                .pick(&llmd_sched::Request::with_tokens(
                    id.clone(),
                    "m",
                    ids.clone(),
                ))
                .unwrap();
            s.on_error(&id, llmd_sched::RequestErrorKind::Cancelled);
            d
        }));
        tok_only.push(time(20, || ours.encode_chat(&messages, &opts).unwrap()));
    }
    let (w, p, t) = (median(whole), median(pick_only), median(tok_only));
    println!(
        "pick_openai, chat of {} tokens, 100 endpoints: {:.0} us = tokenization {:.0} us + decision {:.0} us (+ parsing {:.0} us)",
        ids.len(),
        w * 1e6,
        t * 1e6,
        p * 1e6,
        (w - t - p).max(0.0) * 1e6
    );
}
