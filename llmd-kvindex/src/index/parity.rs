//! Engine-parity mode: events are indexed by their published keys, and
//! parent-less `BlockStored` events are re-hashed as a configuration check.

use super::apply::ApplyReport;
use super::endpoints::EndpointState;
use super::keys::fingerprint;
use super::KvIndex;
use crate::events::{BlockStored, ExtraValue};
use crate::hash::{BlockHasher, ExtraKeySchema, LoraRef, RequestExtras};

/// Why a `BlockStored` cannot be self-checked, if it cannot.
fn checkable(h: &BlockHasher, ev: &BlockStored) -> Option<RequestExtras> {
    let bs = h.block_size();
    let full_attention = matches!(
        ev.kv_cache_spec_kind.as_deref(),
        None | Some("full_attention") | Some("mla_attention")
    );
    if ev.parent().is_some()
        || ev.block_hashes.is_empty()
        || ev.block_size != bs as i64
        || ev.token_ids.len() < bs
        // Tokens of blocks without a key (a sliding-window or Mamba group's
        // masked blocks, from releases that do not name the group's kind):
        // the first key need not be block 0's.
        || ev.token_ids.len() != ev.block_hashes.len() * bs
        || ev.lookahead_token_ids.is_some()
        || !full_attention
    {
        return None;
    }
    let lora = ev.lora_name.as_deref();
    // Block 0's published extra keys: only text (nil) or the LoRA name alone
    // can be reproduced from the event.
    let block0_ok = match ev.extra_keys.as_ref().and_then(|e| e.first()) {
        None | Some(None) => true,
        Some(Some(items)) => match (items.as_slice(), lora) {
            ([ExtraValue::Str(s)], Some(l)) => s == l,
            _ => false,
        },
    };
    let schema = h.config().schema;
    // 0.31+ hashes the LoRA path, which events do not carry.
    if !block0_ok || (lora.is_some() && schema == ExtraKeySchema::V0_31) {
        return None;
    }
    let lora = match (lora, ev.lora_id) {
        (None, None) => None,
        (name, id) => Some(LoraRef {
            id,
            name: name.map(str::to_string),
            path: None,
        }),
    };
    Some(RequestExtras {
        lora,
        ..RequestExtras::default()
    })
}

impl KvIndex {
    /// Engine-parity `BlockStored`: self-check, then store the published keys.
    pub(crate) fn stored_parity(
        &self,
        h: &BlockHasher,
        (ep, st): (u16, &mut EndpointState),
        seed: u64,
        ev: &BlockStored,
        tier: usize,
        report: &mut ApplyReport,
    ) {
        if let Some(extras) = checkable(h, ev) {
            // Block 0 alone covers seed, algorithm, block size and extras.
            if let Ok(keys) = h.block_keys(&ev.token_ids[..h.block_size()], &extras) {
                report.parity_checks += 1;
                if keys.first() != Some(&ev.block_hashes[0].key()) {
                    report.parity_mismatches += 1;
                }
            }
        }
        let fp = |k: &crate::events::HashValue| fingerprint(seed, k.key().0);
        let mut chain = self.chain_for(ep, &st.chains, seed, ev.parent().map(|p| p.key().0));
        let hashes = &ev.block_hashes;
        // Home buckets are fetched a window ahead, so their misses overlap.
        for k in hashes.iter().take(super::table::WRITE_AHEAD) {
            self.table.prefetch_home(fp(k), ep);
        }
        for (i, k) in hashes.iter().enumerate() {
            if let Some(next) = hashes.get(i + super::table::WRITE_AHEAD) {
                self.table.prefetch_home(fp(next), ep);
            }
            let rank = self.store_fp(ep, fp(k), tier, chain.class(), report);
            self.chain_push(&mut chain, ep, k.key().0, rank);
        }
        if let Some(last) = hashes.last() {
            st.chains.insert(fp(last), chain);
        }
    }
}
