//! `llmd hash`: token ids in, vLLM block keys out.

use std::io::Read;

use llmd_sim::keyer::VllmKeyer;
use llmd_sim::tokens::BlockKeyer;

use super::Args;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut a = Args::new(args);
    let bs: usize = a.value("--block-size")?.map_or(Ok(16), |v| {
        v.parse()
            .map_err(|_| format!("--block-size: not a number: {v}"))
    })?;
    let algo = a.value("--algo")?.unwrap_or_else(|| "sha256_cbor".into());
    let seed = a.value("--seed")?;
    let unset = a.flag("--seed-unset");
    let version = a.value("--vllm")?.unwrap_or_else(|| "0.33.0".into());
    let lora = a.value("--lora")?;
    let json = a.flag("--json");
    let mut tokens_text = a.positional()?.join(" ");
    if tokens_text.trim().is_empty() {
        std::io::stdin()
            .read_to_string(&mut tokens_text)
            .map_err(|e| format!("stdin: {e}"))?;
    }
    let tokens = parse_tokens(&tokens_text)?;
    let seed = if unset {
        None
    } else {
        Some(seed.unwrap_or_else(|| "42".into()))
    };
    let keyer = VllmKeyer::new(&version, &algo, bs, seed.as_deref()).map_err(|e| e.to_string())?;
    let keys = keyer.keys(&tokens, bs, lora.as_deref())?;
    if json {
        let doc = serde_json::json!({
            "vllm": version, "algo": algo, "block_size": bs, "seed": seed, "lora": lora,
            "tokens": tokens.len(),
            "keys": keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        });
        outln!("{doc}");
    } else {
        for (i, k) in keys.iter().enumerate() {
            outln!("{i}\t{k}\t{k:#018x}");
        }
        if keys.is_empty() {
            eprintln!("no full block: {} tokens, block size {bs}", tokens.len());
        }
    }
    Ok(())
}

/// Token ids separated by spaces or commas, optionally in JSON brackets.
fn parse_tokens(text: &str) -> Result<Vec<u32>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| format!("not a token id: `{s}`"))
        })
        .collect()
}
