//! Every `hash_cases` entry of `testdata/vllm-compat/vectors.json`, checked at
//! both ends of its vLLM release range: NONE_HASH payload and digest, each
//! block's extra keys, payload bytes, digest and published u64, through the
//! batch API, the trace API and an incremental chain.

use llmd_kvindex::hash::{
    BlockHasher, ExtraKey, HashAlgo, HasherConfig, LoraRef, MmItem, PromptEmbeds, RequestExtras,
};
use serde::Deserialize;
use serde_json::Value;

const VECTORS: &str = include_str!("../../testdata/vllm-compat/vectors.json");

#[derive(Deserialize)]
struct File {
    counts: Counts,
    hash_cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Counts {
    hash_cases: usize,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    algo: String,
    seed: Option<String>,
    vllm_versions: String,
    block_size: usize,
    tokens: Vec<u64>,
    tokens_need_u64: bool,
    extra_key_schema: Option<String>,
    request: Option<Request>,
    none_hash_payload_hex: String,
    none_hash_hex: String,
    blocks: Vec<Block>,
}

#[derive(Deserialize)]
struct Request {
    lora: Option<Lora>,
    cache_salt: Option<String>,
    mm_items: Vec<Mm>,
    prompt_embeds: Option<Embeds>,
}

#[derive(Deserialize)]
struct Lora {
    name: String,
    int_id: i64,
    path: String,
}

#[derive(Deserialize)]
struct Mm {
    identifier: String,
    offset: usize,
    length: usize,
}

#[derive(Deserialize)]
struct Embeds {
    row_bytes: usize,
    data_hex: String,
}

#[derive(Deserialize)]
struct Block {
    index: usize,
    start: usize,
    end: usize,
    extra_keys: Value,
    payload_hex: String,
    digest_hex: String,
    published_u64: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A typed value of vectors.json as an extra key.
fn typed(v: &Value) -> Result<ExtraKey, String> {
    Ok(match v {
        Value::String(s) => ExtraKey::Str(s.clone()),
        Value::Number(n) => ExtraKey::Int(n.as_i64().ok_or("int out of range")?),
        Value::Array(a) => ExtraKey::Tuple(a.iter().map(typed).collect::<Result<_, _>>()?),
        Value::Object(o) => match (o.get("bytes"), o.get("int")) {
            (Some(Value::String(h)), _) => ExtraKey::Bytes(unhex(h)),
            (_, Some(Value::String(i))) => ExtraKey::Int(i.parse().map_err(|_| "bad int")?),
            _ => return Err(format!("unknown typed value {v}")),
        },
        other => return Err(format!("unexpected extra key {other}")),
    })
}

fn expected_extra(v: &Value) -> Result<Option<Vec<ExtraKey>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => Ok(Some(a.iter().map(typed).collect::<Result<_, _>>()?)),
        other => Err(format!("extra_keys is not null or an array: {other}")),
    }
}

fn extras_of(req: &Option<Request>) -> RequestExtras {
    let Some(req) = req else {
        return RequestExtras::default();
    };
    RequestExtras {
        lora: req.lora.as_ref().map(|l| LoraRef {
            id: Some(l.int_id),
            name: Some(l.name.clone()),
            path: Some(l.path.clone()),
        }),
        cache_salt: req.cache_salt.clone(),
        mm_items: req
            .mm_items
            .iter()
            .map(|m| MmItem {
                identifier: m.identifier.clone(),
                offset: m.offset,
                length: m.length,
            })
            .collect(),
        prompt_embeds: req.prompt_embeds.as_ref().map(|e| PromptEmbeds {
            data: unhex(&e.data_hex),
            row_bytes: e.row_bytes,
        }),
    }
}

fn check_at(case: &Case, version: &str) -> Result<(), String> {
    let algo: HashAlgo = case.algo.parse().map_err(|e| format!("{e}"))?;
    let cfg = HasherConfig::for_vllm(version, algo, case.block_size, case.seed.as_deref())
        .map_err(|e| format!("config: {e}"))?;
    if let Some(schema) = &case.extra_key_schema {
        if cfg.schema.as_str() != schema {
            return Err(format!("schema {} != {schema}", cfg.schema));
        }
    }
    let hasher = BlockHasher::new(cfg).map_err(|e| format!("hasher: {e}"))?;
    let got = hex(hasher.none_hash_payload());
    if got != case.none_hash_payload_hex {
        return Err(format!(
            "none-hash payload {got} != {}",
            case.none_hash_payload_hex
        ));
    }
    let got = hex(hasher.none_hash().as_bytes());
    if got != case.none_hash_hex {
        return Err(format!("none hash {got} != {}", case.none_hash_hex));
    }
    let extras = extras_of(&case.request);
    let err = |e: llmd_kvindex::hash::HashError| e.to_string();
    let trace = hasher.trace(&case.tokens, &extras).map_err(err)?;
    let digests = hasher.digests(&case.tokens, &extras).map_err(err)?;
    let keys = hasher.block_keys(&case.tokens, &extras).map_err(err)?;
    let n = case.blocks.len();
    if trace.len() != n || digests.len() != n || keys.len() != n {
        return Err(format!(
            "{} / {} / {} blocks, expected {n}",
            trace.len(),
            digests.len(),
            keys.len()
        ));
    }
    for (i, block) in case.blocks.iter().enumerate() {
        let t = &trace[i];
        let at = format!("block {}", block.index);
        if (t.index, t.start, t.end) != (block.index, block.start, block.end) {
            return Err(format!("{at}: range {}..{}", t.start, t.end));
        }
        let want = expected_extra(&block.extra_keys)?;
        if t.extra_keys != want {
            return Err(format!("{at}: extra keys {:?} != {want:?}", t.extra_keys));
        }
        let single = hasher.extra_keys(&extras, i).map_err(err)?;
        if single != want {
            return Err(format!("{at}: extra_keys() {single:?} != {want:?}"));
        }
        if hex(&t.payload) != block.payload_hex {
            return Err(format!(
                "{at}: payload\n  got  {}\n  want {}",
                hex(&t.payload),
                block.payload_hex
            ));
        }
        if hex(t.digest.as_bytes()) != block.digest_hex || digests[i] != t.digest {
            return Err(format!("{at}: digest {} != {}", t.digest, block.digest_hex));
        }
        let published: u64 = block.published_u64.parse().map_err(|_| "published_u64")?;
        if keys[i].0 != published || t.digest.key().0 != published {
            return Err(format!("{at}: key {} != {published}", keys[i].0));
        }
    }
    // Incremental hashing in uneven pieces gives the same keys.
    let mut chain = hasher.chain(extras.clone());
    for piece in case.tokens.chunks(case.block_size.max(2) * 2 / 3 + 1) {
        chain.extend(piece).map_err(err)?;
    }
    if chain.keys() != keys.as_slice() || chain.num_tokens() != case.tokens.len() {
        return Err("incremental chain differs".into());
    }
    if !case.tokens_need_u64 {
        let narrow: Vec<u32> = case.tokens.iter().map(|&t| t as u32).collect();
        if hasher.block_keys(&narrow, &extras).map_err(err)? != keys {
            return Err("u32 tokens give other keys".into());
        }
    }
    Ok(())
}

#[test]
fn every_hash_case_matches_vllm() {
    let file: File = serde_json::from_str(VECTORS).expect("vectors.json parses");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &file.hash_cases {
        let (lo, hi) = case.vllm_versions.split_once('-').expect("range a-b");
        for version in [lo, hi] {
            if let Err(msg) = check_at(case, version) {
                failures.push(format!("{} @ {version}: {msg}", case.id));
            }
        }
        checked += 1;
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert_eq!(
        checked, file.counts.hash_cases,
        "cases checked vs counts.hash_cases"
    );
    assert_eq!(checked, file.hash_cases.len());
    assert!(
        failures.is_empty(),
        "{} of {checked} hash cases failed",
        failures.len()
    );
}
