//! A chat body routed with a tokenizer: the precise producer's keys come
//! from the same ids the engine hashed, so an engine's events for that chat
//! match it in full; without a tokenizer the decision says it estimated.

use std::collections::BTreeMap;
use std::sync::Arc;

use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_sched::{Endpoint, Scheduler, ESTIMATE_NOTE, MULTIMODAL_ESTIMATE_NOTE};
use llmd_tokenize::{ChatOptions, Tokenizer};

/// A word-level tokenizer over a small vocabulary (whitespace split).
fn tokenizer() -> Tokenizer {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/chat-templates/template_chatml.jinja"
    ))
    .unwrap();
    Tokenizer::from_parts(&tokenizer_json(), &serde_json::Value::Null, Some(&template)).unwrap()
}

/// [`tokenizer`]'s `tokenizer.json`.
fn tokenizer_json() -> String {
    let words = [
        "<s>",
        "<unk>",
        "<|im_start|>",
        "<|im_end|>",
        "user",
        "assistant",
        "system",
    ];
    let mut vocab = serde_json::Map::new();
    for (i, w) in words.iter().enumerate() {
        vocab.insert(w.to_string(), serde_json::json!(i));
    }
    for i in 0..500 {
        vocab.insert(format!("w{i}"), serde_json::json!(words.len() + i));
    }
    let tj = serde_json::json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 2, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 3, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    tj.to_string()
}

const CONFIG: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";

#[test]
fn chat_bodies_route_on_the_engines_ids() {
    let tok = tokenizer();
    let words: Vec<String> = (0..120).map(|i| format!("w{}", i % 500)).collect();
    let messages = serde_json::json!([{"role": "system", "content": words[..60].join(" ")}, {"role": "user", "content": words[60..].join(" ")}]);
    let body = serde_json::json!({"model": "m", "messages": messages}).to_string();
    let ids = tok
        .encode_chat(&messages.to_string(), &ChatOptions::default())
        .unwrap();
    assert!(ids.len() > 100);

    let s = Scheduler::from_config_str(CONFIG).unwrap().with_seed(1);
    for n in ["a", "b", "c"] {
        s.add_endpoint(Endpoint::new(
            n,
            format!("10.0.0.{}:8000", n.len() + n.as_bytes()[0] as usize % 50),
        ))
        .unwrap();
    }
    // Pod "b" computed this chat: its engine published the blocks of `ids`.
    let full = ids.len() / 16 * 16;
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: (0..full as i128 / 16)
            .map(|k| HashValue::Int(1000 + k))
            .collect(),
        parent_block_hash: None,
        token_ids: ids[..full].iter().map(|&t| u64::from(t)).collect(),
        block_size: 16,
        ..Default::default()
    });
    let batch = EventBatch {
        ts: 1.0,
        data_parallel_rank: None,
        events: vec![ev],
        skipped_events: 0,
    };
    s.ingest_kv_events("b", &encode_event_batch(&batch, EventLayout::V0_33), None)
        .unwrap();

    // Without a tokenizer: estimates, said in the explanation.
    let d = s
        .pick_openai(
            "r0",
            "/v1/chat/completions",
            body.as_bytes(),
            &BTreeMap::new(),
        )
        .unwrap();
    assert!(d.explanation.notes.iter().any(|n| n == ESTIMATE_NOTE));
    s.on_error("r0", llmd_sched::RequestErrorKind::Cancelled);

    s.set_tokenizer("m", Arc::new(tok));
    for i in 0..10 {
        let id = format!("r{}", i + 1);
        let d = s
            .pick_openai(
                &id,
                "/v1/chat/completions",
                body.as_bytes(),
                &BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(d.primary().unwrap().name, "b");
        assert!(d.explanation.notes.iter().all(|n| n != ESTIMATE_NOTE));
        let note = d
            .explanation
            .notes
            .iter()
            .find(|n| n.contains("best consecutive match"))
            .unwrap();
        assert!(
            note.contains(&format!("best consecutive match {} blocks", full / 16)),
            "{note}"
        );
        s.on_error(&id, llmd_sched::RequestErrorKind::Cancelled);
    }
}

#[test]
fn a_conversations_turns_reuse_its_session_with_the_same_ids() {
    let tok = Arc::new(tokenizer());
    let s = Scheduler::from_config_str(CONFIG).unwrap().with_seed(1);
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    s.set_tokenizer("", tok.clone());
    let mut convo = vec![serde_json::json!({"role": "system", "content": "w1 w2 w3"})];
    let headers: BTreeMap<String, String> =
        [("X-Session-Id".to_string(), "conv-1".to_string())].into();
    for turn in 0..6 {
        convo.push(
            serde_json::json!({"role": "user", "content": format!("w{} w{}", turn, turn + 10)}),
        );
        let messages = serde_json::Value::Array(convo.clone());
        let full = tok
            .encode_chat(&messages.to_string(), &ChatOptions::default())
            .unwrap();
        let body = serde_json::json!({"model": "m", "messages": messages}).to_string();
        let id = format!("t{turn}");
        let d = s
            .pick_openai(&id, "/v1/chat/completions", body.as_bytes(), &headers)
            .unwrap();
        assert_eq!(
            d.explanation.prompt_token_count(),
            full.len(),
            "turn {turn}"
        );
        s.on_error(&id, llmd_sched::RequestErrorKind::Cancelled);
        convo.push(serde_json::json!({"role": "assistant", "content": format!("w{}", turn + 20)}));
    }
    assert_eq!(tok.cached_sessions(), 1);
}

#[test]
fn a_config_names_the_tokenizer_directory() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/tokenizers/tiny");
    let cfg = CONFIG.replace(
        "- type: max-score-picker\nschedulingProfiles",
        &format!("- type: max-score-picker\n- type: token-producer\n  parameters: {{modelName: m, tokenizerDir: '{dir}'}}\nschedulingProfiles"),
    );
    let s = Scheduler::from_config_str(&cfg).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    let rec = s
        .config_report()
        .plugins
        .iter()
        .find(|p| p.plugin_type == "token-producer")
        .unwrap();
    assert!(rec.remark.as_deref().unwrap().contains("tokenizerDir"));
    assert_eq!(
        llmd_tokenize::load_configured(&s).unwrap(),
        vec!["m".to_string()]
    );
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    let body = r#"{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}]}"#;
    let d = s
        .pick_openai(
            "r",
            "/v1/chat/completions",
            body.as_bytes(),
            &BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(d.explanation.prompt_token_count(), 7);
    assert!(d.explanation.notes.iter().all(|n| n != ESTIMATE_NOTE));
    let bad = CONFIG.replace("- type: max-score-picker\nschedulingProfiles", "- type: max-score-picker\n- type: token-producer\n  parameters: {tokenizerDir: /nonexistent}\nschedulingProfiles");
    let s = Scheduler::from_config_str(&bad).unwrap();
    let e = llmd_tokenize::load_configured(&s).unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent") && e.contains("tokenizerDir"),
        "{e}"
    );
}

#[test]
fn a_session_reuses_ids_only_while_the_added_token_still_follows() {
    let tok = tokenizer();
    let opts = ChatOptions::default();
    let mut s = llmd_tokenize::ChatSession::new();
    // The rendering ends "…assistant\nw2<|im_end|>\n": the cached text stops
    // right before that <|im_end|>.
    let first = r#"[{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w2"}]"#;
    assert_eq!(
        s.encode_chat(&tok, first, &opts).unwrap(),
        tok.encode_chat(first, &opts).unwrap()
    );
    // The same conversation with its last message edited: the text still
    // starts with the cached "…w2", but "w2w5" is one (unknown) word.
    let edited = r#"[{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w2w5"}]"#;
    let full = tok.encode_chat(edited, &opts).unwrap();
    assert_eq!(s.encode_chat(&tok, edited, &opts).unwrap(), full);
    // A continued conversation still reuses the earlier turns.
    let next = r#"[{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w2w5"}, {"role": "user", "content": "w3"}]"#;
    assert_eq!(
        s.encode_chat(&tok, next, &opts).unwrap(),
        tok.encode_chat(next, &opts).unwrap()
    );
    assert!(s.last_reused_tokens() > 0);
}

/// A long prompt cut to a few tokens (`truncate_prompt_tokens` without a
/// side): the BOS and the last tokens, as vLLM's tokenizer (loaded with
/// `truncation_side="left"`) keeps them, without building a window per cut
/// token (a 200,000-word prompt cut to 3 used to allocate about 200,000
/// encodings).
#[test]
fn a_long_prompt_truncated_to_a_few_tokens() {
    let mut tj: serde_json::Value = serde_json::from_str(&tokenizer_json()).unwrap();
    tj["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}
    });
    let t = Tokenizer::from_parts(&tj.to_string(), &serde_json::Value::Null, None).unwrap();
    let prompt: Vec<String> = (0..200_000).map(|i| format!("w{}", i % 500)).collect();
    let body = serde_json::json!({"prompt": prompt.join(" "), "truncate_prompt_tokens": 3});
    let ids = t
        .encode_openai("/v1/completions", body.to_string().as_bytes())
        .unwrap();
    let whole = t.encode(&prompt.join(" "), false).unwrap();
    assert_eq!(ids, [&[0], &whole[whole.len() - 2..]].concat());
    // A side given: the whole text tokenized, then cut there.
    let body = serde_json::json!({"prompt": "w0 w1 w2 w3", "truncate_prompt_tokens": 2, "truncation_side": "left"});
    let ids = t
        .encode_openai("/v1/completions", body.to_string().as_bytes())
        .unwrap();
    assert_eq!(ids, vec![9, 10]);
}

/// `truncation` and `padding` sections in `tokenizer.json` are not applied,
/// as transformers turns both off for a call that does not ask for them.
#[test]
fn the_files_truncation_and_padding_are_not_applied() {
    let mut tj: serde_json::Value = serde_json::from_str(&tokenizer_json()).unwrap();
    tj["truncation"] = serde_json::json!({"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0});
    tj["padding"] = serde_json::json!({"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 1, "pad_type_id": 0, "pad_token": "<unk>"});
    let t = Tokenizer::from_parts(&tj.to_string(), &serde_json::Value::Null, None).unwrap();
    assert_eq!(t.encode("w0 w1 w2 w3", true).unwrap(), vec![7, 8, 9, 10]);
}

/// The engine's chat settings: `--chat-template` replaces the directory's
/// template (a file or the template itself), `--default-chat-template-kwargs`
/// sit under the request's own kwargs (a `None` default kept as given); the
/// names vLLM passes itself are refused; from a config as from the API.
#[test]
fn the_engines_chat_template_and_default_kwargs() {
    let tpl = "{% for m in messages %}{{ m.content }}|{% endfor %}{{ flag }}/{{ other is none }}";
    let defaults: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"flag": "F", "other": null, "unread": 1}"#).unwrap();
    let tok = tokenizer()
        .with_chat_template(tpl)
        .unwrap()
        .with_default_chat_template_kwargs(&defaults)
        .unwrap();
    let msgs = r#"[{"role": "user", "content": "w1"}]"#;
    let render = |kw: Option<&str>| {
        let opts = ChatOptions {
            chat_template_kwargs: kw.map(str::to_string),
            ..ChatOptions::default()
        };
        tok.render_chat(msgs, &opts).unwrap()
    };
    assert_eq!(render(None), "w1|F/True");
    assert_eq!(render(Some(r#"{"flag": "G"}"#)), "w1|G/True");
    // An unset request value does not override the engine's.
    assert_eq!(
        render(Some(r#"{"flag": null, "other": "auto"}"#)),
        "w1|F/True"
    );
    let tokenize: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"tokenize": true}"#).unwrap();
    assert!(tokenizer()
        .with_default_chat_template_kwargs(&tokenize)
        .is_ok());
    for k in ["chat_template", "messages", "conversation"] {
        let bad: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&format!(r#"{{"{k}": 1}}"#)).unwrap();
        let e = tokenizer()
            .with_default_chat_template_kwargs(&bad)
            .unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
    // A value without `{`, `}` or a line break names a file.
    let e = tokenizer()
        .with_chat_template("no-such-template")
        .unwrap_err();
    assert!(e.to_string().contains("no-such-template"), "{e}");
    let path = std::env::temp_dir().join(format!("llmd-tpl-{}.jinja", std::process::id()));
    std::fs::write(&path, tpl).unwrap();
    let from_file = tokenizer()
        .with_chat_template(path.to_str().unwrap())
        .unwrap();
    assert_eq!(
        from_file
            .render_chat(msgs, &ChatOptions::default())
            .unwrap(),
        "w1|/False"
    );

    // From a config, beside tokenizerDir.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/tokenizers/tiny");
    let s = with_token_producer(&format!(
        "    modelName: m\n    tokenizerDir: '{dir}'\n    chatTemplate: '{}'\n    defaultChatTemplateKwargs: {{flag: w2 w3 w4}}\n",
        path.display()
    ));
    let d = chat_pick(&s, "w1");
    let want = tok_ids(&from_file_with_flag(&path), msgs);
    assert_eq!(d.explanation.prompt_token_count(), want);
    // Without a tokenizer directory they apply to nothing: refused.
    let orphan = CONFIG.replace(
        "- type: max-score-picker\nschedulingProfiles",
        "- type: max-score-picker\n- type: token-producer\n  parameters: {defaultChatTemplateKwargs: {flag: x}}\nschedulingProfiles",
    );
    let e = Scheduler::from_config_str(&orphan).unwrap_err().to_string();
    assert!(e.contains("defaultChatTemplateKwargs"), "{e}");
    let _ = std::fs::remove_file(path);
}

fn from_file_with_flag(path: &std::path::Path) -> Tokenizer {
    let kw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"flag": "w2 w3 w4"}"#).unwrap();
    tokenizer()
        .with_chat_template(path.to_str().unwrap())
        .unwrap()
        .with_default_chat_template_kwargs(&kw)
        .unwrap()
}

fn tok_ids(t: &Tokenizer, msgs: &str) -> usize {
    t.encode_chat(msgs, &ChatOptions::default()).unwrap().len()
}

/// A chat body with media parts is routed on an estimate, with a note
/// saying why, rather than refused: the engine's placeholder tokens come
/// from its processor.
#[test]
fn a_multimodal_chat_body_is_routed_on_an_estimate() {
    let s = Scheduler::from_config_str(CONFIG).unwrap();
    s.set_tokenizer("m", Arc::new(tokenizer()));
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    let body = r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}, {"type": "text", "text": "w1 w2"}]}]}"#;
    let d = pick_body(&s, body);
    assert_eq!(d.primary().unwrap().name, "a");
    let notes = &d.explanation.notes;
    assert!(
        notes.iter().any(|n| n == MULTIMODAL_ESTIMATE_NOTE),
        "{notes:?}"
    );
    assert!(notes.iter().all(|n| n != ESTIMATE_NOTE), "{notes:?}");
    // Media parts that name no fetchable item are media all the same.
    for part in [
        r#"{"type": "input_image", "image_url": "http://x/z.png"}"#,
        r#"{"image_embeds": "AAAA"}"#,
        r#"{"type": "image_url", "image_url": {"url": "http://x/y.png"}, "uuid": "u1"}"#,
    ] {
        let body = format!(
            r#"{{"model": "m", "messages": [{{"role": "user", "content": [{part}, {{"type": "text", "text": "w1"}}]}}]}}"#
        );
        let d = pick_body(&s, &body);
        let notes = &d.explanation.notes;
        assert!(
            notes.iter().any(|n| n == MULTIMODAL_ESTIMATE_NOTE),
            "{part}"
        );
    }
    // Text only: the tokenizer's ids, no note.
    let d = chat_pick(&s, "w1 w2");
    let notes = &d.explanation.notes;
    assert!(notes.iter().all(|n| n != MULTIMODAL_ESTIMATE_NOTE));
}

/// A body with its own chat template is routed on an estimate and says
/// so (the tokenizer alone refuses it: it cannot give the engine's ids);
/// a P/D decode body's forwarded ids are taken as the engine takes them.
#[test]
fn bodies_the_engine_renders_its_own_way() {
    let s = Scheduler::from_config_str(CONFIG).unwrap();
    let tok = tokenizer();
    s.set_tokenizer("m", Arc::new(tokenizer()));
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    let body = r#"{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}], "chat_template": "{{ messages[0].content }}"}"#;
    let d = pick_body(&s, body);
    let note = llmd_sched::NotRendered::ChatTemplate.note();
    assert!(
        d.explanation.notes.iter().any(|n| n == note),
        "{:?}",
        d.explanation.notes
    );
    let e = tok
        .encode_openai("/v1/chat/completions", body.as_bytes())
        .unwrap_err();
    assert!(
        matches!(&e, llmd_tokenize::TokenizeError::NotExact(why) if why.contains("chat_template")),
        "{e}"
    );
    // A chat with media parts is a valid body whose ids are estimated, as
    // pick_openai routes it: not exact, not malformed.
    let media = r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}"#;
    let e = tok
        .encode_openai("/v1/chat/completions", media.as_bytes())
        .unwrap_err();
    assert!(
        matches!(&e, llmd_tokenize::TokenizeError::NotExact(why) if why.contains("multimodal")),
        "{e}"
    );
    let body = r#"{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}], "kv_transfer_params": {"prompt_token_ids": [9, 8, 7]}}"#;
    assert_eq!(
        tok.encode_openai("/v1/chat/completions", body.as_bytes())
            .unwrap(),
        [9, 8, 7]
    );
    let d = pick_body(&s, body);
    assert_eq!(d.explanation.prompt_token_count(), 3);
    // Request::from_openai takes the forwarded ids as pick_openai does.
    let r = llmd_sched::Request::from_openai("/v1/chat/completions", body.as_bytes()).unwrap();
    assert_eq!(r.prompt, llmd_sched::Prompt::Tokens(vec![9, 8, 7]));
    // A completions prompt of ids beside prompt_embeds or a suffix keeps
    // its ids (with the note), rather than an empty estimate refused.
    for extra in [r#""prompt_embeds": "AAAA""#, r#""suffix": "x""#] {
        let body = format!(r#"{{"model": "m", "prompt": [4, 5, 6, 7], {extra}}}"#);
        let d = s
            .pick_openai("r2", "/v1/completions", body.as_bytes(), &BTreeMap::new())
            .unwrap();
        assert_eq!(d.explanation.prompt_token_count(), 4, "{extra}");
        assert!(
            d.explanation.notes.iter().any(|n| n.contains("estimated")),
            "{extra}"
        );
    }
    assert!(
        d.explanation.notes.iter().all(|n| !n.contains("estimated")),
        "{:?}",
        d.explanation.notes
    );
}

/// A copy of the tiny tokenizer directory with `extra` files added.
fn tiny_with(tag: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let src = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/tokenizers/tiny"
    ));
    let dir = std::env::temp_dir().join(format!("llmd-tiny-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "chat_template.jinja",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    for (name, text) in extra {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Models whose prompts vLLM builds otherwise than from the Hugging Face
/// files: a gpt-oss model's chats (Harmony) and a Mistral directory's
/// every prompt (mistral-common) are routed on an estimate that says why,
/// and the tokenizer refuses to call its ids the engine's; a gpt-oss
/// completions prompt stays exact.
#[test]
fn models_the_engine_renders_otherwise_route_on_an_estimate() {
    let chat = r#"{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}]}"#;
    let cmpl = r#"{"model": "m", "prompt": "w1 w2"}"#;
    for (tag, extra, chat_exact, cmpl_exact) in [
        (
            "oss",
            ("config.json", r#"{"model_type": "gpt_oss"}"#),
            false,
            true,
        ),
        ("mistral", ("tekken.json", "{}"), false, false),
        (
            "plain",
            ("config.json", r#"{"model_type": "qwen2"}"#),
            true,
            true,
        ),
    ] {
        let dir = tiny_with(tag, &[extra]);
        let tok = Tokenizer::from_dir(&dir).unwrap();
        let s = Scheduler::from_config_str(CONFIG).unwrap();
        s.set_tokenizer("m", Arc::new(Tokenizer::from_dir(&dir).unwrap()));
        s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
        for (path, body, exact) in [
            ("/v1/chat/completions", chat, chat_exact),
            ("/v1/completions", cmpl, cmpl_exact),
        ] {
            let d = s
                .pick_openai("r", path, body.as_bytes(), &BTreeMap::new())
                .unwrap();
            let estimated = d
                .explanation
                .notes
                .iter()
                .any(|n| n.contains("token ids estimated"));
            assert_eq!(estimated, !exact, "{tag} {path}: {:?}", d.explanation.notes);
            match tok.encode_openai(path, body.as_bytes()) {
                Ok(_) => assert!(exact, "{tag} {path}"),
                Err(e) => assert!(
                    !exact && matches!(e, llmd_tokenize::TokenizeError::NotExact(_)),
                    "{tag} {path}: {e}"
                ),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A scheduler whose config adds a token producer with `params` (YAML
/// lines under `parameters:`), its tokenizers loaded, and one endpoint.
fn with_token_producer(params: &str) -> Scheduler {
    let cfg = CONFIG.replace(
        "- type: max-score-picker\nschedulingProfiles",
        &format!("- type: max-score-picker\n- type: token-producer\n  parameters:\n{params}schedulingProfiles"),
    );
    let s = Scheduler::from_config_str(&cfg).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    llmd_tokenize::load_configured(&s).unwrap();
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    s
}

/// The decision for a chat body of one user message.
fn chat_pick(s: &Scheduler, content: &str) -> llmd_sched::Decision {
    pick_body(
        s,
        &format!(r#"{{"model": "m", "messages": [{{"role": "user", "content": "{content}"}}]}}"#),
    )
}

/// The decision for a chat completions `body`.
fn pick_body(s: &Scheduler, body: &str) -> llmd_sched::Decision {
    s.pick_openai(
        "r",
        "/v1/chat/completions",
        body.as_bytes(),
        &BTreeMap::new(),
    )
    .unwrap()
}

/// A template that defaults a setting by reading it in its own assignment
/// (`{% set enable_thinking = enable_thinking | default(true) %}`, as
/// several published chat templates do) takes it from the request's
/// `chat_template_kwargs` and from the engine's defaults: Jinja2 reads the
/// value before binding the name, so vLLM counts it as a template input.
#[test]
fn a_setting_defaulted_by_its_own_assignment_reaches_the_template() {
    let tpl = "{%- set enable_thinking = enable_thinking | default(true) -%}\
               {%- set shown = 'think' if enable_thinking else 'plain' -%}\
               {% for m in messages %}{{ m.content }}|{% endfor %}{{ shown }}";
    let msgs = r#"[{"role": "user", "content": "w1"}]"#;
    let render = |tok: &Tokenizer, kw: Option<&str>| {
        let opts = ChatOptions {
            chat_template_kwargs: kw.map(str::to_string),
            ..ChatOptions::default()
        };
        tok.render_chat(msgs, &opts).unwrap()
    };
    let tok = tokenizer().with_chat_template(tpl).unwrap();
    assert_eq!(render(&tok, None), "w1|think");
    assert_eq!(
        render(&tok, Some(r#"{"enable_thinking": false}"#)),
        "w1|plain"
    );
    // `shown` is bound before it is read: not an input.
    assert_eq!(render(&tok, Some(r#"{"shown": "x"}"#)), "w1|think");
    let defaults: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"enable_thinking": false}"#).unwrap();
    let tok = tok.with_default_chat_template_kwargs(&defaults).unwrap();
    assert_eq!(render(&tok, None), "w1|plain");
    assert_eq!(
        render(&tok, Some(r#"{"enable_thinking": true}"#)),
        "w1|think"
    );
}

/// Numbers in a request reach the template as Python's `json.loads` reads
/// them: a 17-digit float keeps its last digit (vLLM prints
/// `51.248178375505404` back, not `51.24817837550541`).
#[test]
fn floats_in_tool_arguments_keep_every_digit() {
    let tok = tokenizer()
        .with_chat_template("{{ messages[0].tool_calls[0].function.arguments | tojson }}")
        .unwrap();
    let msgs = r#"[{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 51.248178375505404, \"y\": 2.2250738585072011e-308}"}}]}]"#;
    let text = tok.render_chat(msgs, &ChatOptions::default()).unwrap();
    assert_eq!(
        text,
        r#"{"x": 51.248178375505404, "y": 2.225073858507201e-308}"#
    );
}
