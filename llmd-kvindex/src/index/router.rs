//! Router keys: the index's own chained XXH3-64 over token ids, and the
//! per-endpoint engine-key → router-key mapping used to place events.

use super::apply::ApplyReport;
use super::depth::ORPHAN;
use super::endpoints::{covered_key, EndpointState, Mapped};
use super::keys::{fingerprint, model_seed};
use super::tails::{PendingEngine, Tail};
use super::KvIndex;
use crate::events::{BlockRemoved, BlockStored};
use crate::types::Tier;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Root of a chain: seeded from the model name and the LoRA adapter (its
/// name, or its integer id where releases before vLLM 0.14 publish only
/// that), so different adapters of one model never share blocks.
pub(crate) fn router_root(model: &str, lora_name: Option<&str>, lora_id: Option<i64>) -> u64 {
    let mut buf = Vec::with_capacity(model.len() + 10 + lora_name.map_or(0, str::len));
    buf.extend_from_slice(model.as_bytes());
    buf.push(0xff);
    match (lora_name, lora_id) {
        (Some(name), _) => {
            buf.push(1);
            buf.extend_from_slice(name.as_bytes());
        }
        (None, Some(id)) => {
            buf.push(2);
            buf.extend_from_slice(&id.to_le_bytes());
        }
        (None, None) => {}
    }
    xxh3_64(&buf)
}

/// Appends the chained keys of every full block of `tokens` to `out`:
/// `key[i] = XXH3-64(tokens of block i as LE u32, seed = key[i-1])`.
/// Token ids are taken modulo 2^32 (vocabularies are far smaller).
pub(crate) fn router_chain(
    root: u64,
    block_size: usize,
    tokens: impl ExactSizeIterator<Item = u64>,
    buf: &mut Vec<u8>,
    out: &mut Vec<u64>,
) {
    router_chain_after(root, block_size, &[], tokens, buf, out)
}

/// [`router_chain`] over `pending` (the tokens of a router block begun
/// earlier, continuing `root`) followed by `tokens`.
fn router_chain_after(
    root: u64,
    block_size: usize,
    pending: &[u32],
    tokens: impl ExactSizeIterator<Item = u64>,
    buf: &mut Vec<u8>,
    out: &mut Vec<u64>,
) {
    let mut parent = root;
    let block_size = block_size.max(1);
    let full = (pending.len() + tokens.len()) / block_size * block_size;
    buf.clear();
    let all = pending.iter().map(|&t| u64::from(t)).chain(tokens);
    for t in all.take(full) {
        buf.extend_from_slice(&(t as u32).to_le_bytes());
        if buf.len() == block_size * 4 {
            parent = xxh3_64_with_seed(buf, parent);
            out.push(parent);
            buf.clear();
        }
    }
}

/// Router blocks before its last that one engine block's mapping names
/// (derived mappings). Engine blocks of vLLM's hybrid models span a hundred
/// or so router blocks of 16 tokens; each mention of an engine key touches
/// all of its derived mappings, so this bounds the work one event name can
/// cost. Router blocks of an engine block beyond it are counted as
/// unplaceable.
pub(crate) const MAX_COVERED: usize = 1024;

/// The mapping of engine key `e`, refreshed in the map's LRU order with its
/// derived mappings ([`Mapped::covered`]), so that they age out together.
fn refresh(st: &mut EndpointState, e: u64) -> Option<Mapped> {
    let m = st.engine_map.get(&e)?;
    if m.covered > 0 {
        for n in (1..=m.covered).rev() {
            st.engine_map.get(&covered_key(e, n));
        }
        st.engine_map.get(&e);
    }
    Some(m)
}

impl KvIndex {
    /// Router-key mode `BlockStored`. Called with the endpoint's lock held.
    pub(crate) fn stored_router(
        &self,
        ep: u16,
        st: &mut EndpointState,
        model: &str,
        ev: &BlockStored,
        tier: usize,
        report: &mut ApplyReport,
    ) {
        let seed = model_seed(model);
        // Scratch buffers live in the endpoint state: no allocation per event.
        let (mut engine, mut routers, mut buf) = std::mem::take(&mut st.scratch);
        engine.clear();
        routers.clear();
        engine.extend(ev.block_hashes.iter().map(|h| h.key().0));
        if ev.token_ids.is_empty() {
            // An offload placeholder names blocks, in no order that matters:
            // each once (a key repeated would redo its derived mappings).
            engine.sort_unstable();
            engine.dedup();
        }
        self.place_router(
            ep,
            st,
            model,
            seed,
            ev,
            tier,
            &engine,
            &mut routers,
            &mut buf,
            report,
        );
        st.scratch = (engine, routers, buf);
        shrink_scratch(st);
    }

    #[allow(clippy::too_many_arguments)] // one call site; the scratch buffers are split out
    fn place_router(
        &self,
        ep: u16,
        st: &mut EndpointState,
        model: &str,
        seed: u64,
        ev: &BlockStored,
        tier: usize,
        engine: &[u64],
        routers: &mut Vec<u64>,
        buf: &mut Vec<u8>,
        report: &mut ApplyReport,
    ) {
        if ev.token_ids.is_empty() {
            // Offload placeholder: only its engine keys mean anything.
            for &e in engine {
                let Some(m) = refresh(st, e) else {
                    report.unplaceable += 1;
                    continue;
                };
                // Every router block the engine block is part of, held in
                // one more tier (its depth is known where it is held).
                let keys = std::iter::once(e).chain((1..=m.covered).map(|n| covered_key(e, n)));
                for k in keys {
                    let Some(m) = st.engine_map.peek(&k) else {
                        report.unplaceable += 1;
                        continue;
                    };
                    if m.media == 0 {
                        // Ends a router block not yet complete: nothing of
                        // its own to hold in another tier.
                        continue;
                    }
                    let media = m.media | 1 << tier;
                    st.engine_map.update(&k, Mapped { media, ..m });
                    let fp = fingerprint(seed, m.router_key);
                    let depth = self.table.depth_class(fp, ep).unwrap_or(ORPHAN);
                    self.store_fp(ep, fp, tier, depth, report);
                }
            }
            return;
        }
        // Where the event's tokens continue: the chain's root, the router
        // block its parent ends, or a router block its parent began and did
        // not complete (router blocks larger than the engine's).
        let (root, parent, tail) = match ev.parent() {
            None => (
                router_root(model, ev.lora_name.as_deref(), ev.lora_id),
                None,
                None,
            ),
            // A parent in use is refreshed: a shared prefix that events
            // only name as their parent must not age out of the map first.
            Some(p) => match refresh(st, p.key().0) {
                Some(m) if m.aligned => (m.router_key, Some(m.router_key), None),
                // The tail is taken: one child continues it. (A second
                // child, a branch inside the router block, is not placed.)
                _ => match st.tails.take(p.key().0) {
                    // Its blocks still held as they were when it was kept
                    // (a block the engine freed since breaks the chain).
                    Some(t)
                        if t.engines
                            .iter()
                            .all(|w| st.engine_map.peek(&w.key).is_some()) =>
                    {
                        (t.root, t.parent, Some(t))
                    }
                    _ => {
                        // Ends inside a router block whose tokens were not
                        // kept (a branch before the block's end, a tail
                        // continued already or dropped for space): its
                        // tokens would chain at the wrong offset.
                        report.unplaceable += engine.len().max(1) as u32;
                        return;
                    }
                },
            },
        };
        let pending: &[u32] = tail.as_ref().map_or(&[], |t| &t.tokens);
        router_chain_after(
            root,
            self.block_size,
            pending,
            ev.token_ids.iter().copied(),
            buf,
            routers,
        );
        if engine.is_empty() {
            // Tokens without a block naming them: their router blocks have
            // no engine key to be held or removed under (counted). The tail
            // stays for the event that continues it.
            report.unplaceable += routers.len() as u32;
            if let (Some(t), Some(p)) = (tail, ev.parent()) {
                st.tails.insert(p.key().0, t);
            }
            return;
        }
        // `held`: false for an engine block waiting in a tail (its router
        // block is not complete), mapped with no tier of its own
        // ([`Mapped::media`] 0) so that its removal finds its derived
        // mappings; one held already (a chain sent again, say after an
        // offloaded copy was loaded back) keeps its mapping.
        let mut map = |e: u64, router_key: u64, aligned: bool, covered: u16, held: bool| {
            let old = st.engine_map.peek(&e);
            if !held && old.is_some_and(|m| m.media != 0) {
                return;
            }
            let media = old.map_or(0, |m| m.media) | u8::from(held) << tier;
            // Derived mappings made by an earlier layout stay reachable.
            let covered = old.map_or(covered, |m| m.covered.max(covered));
            // A mapping dropped for space leaves its blocks in the table
            // until they are evicted; only later events naming it are lost.
            let _dropped = st.engine_map.insert(
                e,
                Mapped {
                    router_key,
                    media,
                    aligned,
                    covered,
                },
            );
        };
        // Offsets count from the start of the pending block, if any: a
        // router-block boundary either way.
        let before = pending.len();
        let tokens = before + ev.token_ids.len();
        let own = ev.token_ids.len();
        // Tokens per engine block: as published, or (a publisher that gives
        // none) the tokens shared evenly.
        let block = match usize::try_from(ev.block_size) {
            Ok(b) if b > 0 => b,
            _ => own / engine.len(),
        };
        let bs = self.block_size;
        // The tail's engine blocks end inside its pending block: router
        // block 0 here, when this event completes it.
        let tail_engines = tail.as_ref().map_or(&[][..], |t| &t.engines[..]);
        if let Some(&r) = routers.first() {
            for p in tail_engines {
                map(p.key, r, false, p.covered, true);
            }
        }
        if block > 0 && block.checked_mul(engine.len()) == Some(own) {
            // Each engine block maps to the router block holding its last
            // token; it can parent a later event only when both end there.
            // The router blocks before that one holding some of its tokens
            // are mapped too (derived keys), so its removal clears them all.
            // Engine blocks ending past the last full router block wait in
            // a tail for the event that completes it.
            let mut waiting = Vec::new();
            // A new tail is kept under the event's last engine block.
            let tail_key = engine[engine.len() - 1];
            if routers.is_empty() {
                waiting.extend_from_slice(tail_engines);
            }
            for (j, &e) in engine.iter().enumerate() {
                let end = before + (j + 1) * block;
                let last = (end - 1) / bs;
                let first = (before + j * block) / bs;
                // Beyond MAX_COVERED earlier router blocks the rest are
                // not mapped: counted, as their removal will not clear them.
                let covered = (last - first).min(MAX_COVERED) as u16;
                report.unplaceable += (last - first - usize::from(covered)) as u32;
                // The derived mappings first: the engine key's own is then
                // the most recent, and ages out after them, not before.
                for n in 1..=covered {
                    map(
                        covered_key(e, n),
                        routers[last - usize::from(n)],
                        false,
                        0,
                        true,
                    );
                }
                match routers.get(last) {
                    Some(&r) => {
                        map(e, r, end % bs == 0, covered, true);
                    }
                    None => {
                        map(e, 0, false, covered, false);
                        waiting.push(PendingEngine { key: e, covered });
                    }
                }
            }
            if !waiting.is_empty() {
                // The router block begun here: its tokens so far, after the
                // last complete one.
                let from = routers.len() * bs;
                let mut kept = Vec::with_capacity(tokens - from);
                let all = pending.iter().copied();
                kept.extend(all.chain(ev.token_ids.iter().map(|&t| t as u32)).skip(from));
                let (root, parent) = match routers.last() {
                    Some(&r) => (r, Some(r)),
                    None => (root, parent),
                };
                let tail = Tail {
                    root,
                    parent,
                    tokens: kept,
                    engines: waiting,
                };
                st.tails.insert(tail_key, tail);
            }
        } else {
            // Masked blocks (sliding-window or Mamba groups publish only
            // some of the span's blocks) or a block size that does not
            // match the tokens: where the earlier blocks sit in the span is
            // not known, so only the last, which ends the span, is mapped
            // (its removal clears the span's last router block; the others'
            // removals count as unplaceable).
            let last = engine[engine.len() - 1];
            if routers.is_empty() {
                // The tail's blocks lose the tokens that would complete
                // their router block.
                report.unplaceable += tail_engines.len() as u32;
            }
            match routers.get((tokens - 1) / bs) {
                Some(&r) => {
                    map(last, r, tokens % bs == 0, 0, true);
                }
                None => report.unplaceable += 1,
            }
        }
        let mut chain = self.chain_for(ep, &st.chains, seed, parent);
        // Home buckets are fetched a window ahead, so their misses overlap.
        for &r in routers.iter().take(super::table::WRITE_AHEAD) {
            self.table.prefetch_home(fingerprint(seed, r), ep);
        }
        for (i, &r) in routers.iter().enumerate() {
            if let Some(&next) = routers.get(i + super::table::WRITE_AHEAD) {
                self.table.prefetch_home(fingerprint(seed, next), ep);
            }
            let rank = self.store_fp(ep, fingerprint(seed, r), tier, chain.class(), report);
            self.chain_push(&mut chain, ep, r, rank);
        }
        if let Some(&last) = routers.last() {
            st.chains.insert(fingerprint(seed, last), chain);
        }
    }

    /// Router-key mode `BlockRemoved`. Called with the endpoint's lock held.
    pub(crate) fn removed_router(
        &self,
        ep: u16,
        st: &mut EndpointState,
        seed: u64,
        ev: &BlockRemoved,
        tier: usize,
        report: &mut ApplyReport,
    ) {
        let gpu = tier == Tier::Gpu as usize;
        // Each key once: a repeated key (nothing left to remove) would redo
        // its derived mappings; repeats are counted as unplaceable.
        let (mut keys, routers, buf) = std::mem::take(&mut st.scratch);
        keys.clear();
        keys.extend(ev.block_hashes.iter().map(|h| h.key().0));
        keys.sort_unstable();
        keys.dedup();
        report.unplaceable += (ev.block_hashes.len() - keys.len()) as u32;
        for &e in &keys {
            if gpu {
                // No child continues a block the engine freed.
                st.tails.drop_for(e);
            }
            let Some(own) = st.engine_map.peek(&e) else {
                report.unplaceable += 1;
                continue;
            };
            // Every router block the engine block was part of (a waiting
            // block has none of its own); one whose mapping aged out
            // meanwhile stays until evicted (counted).
            let derived = (1..=own.covered).map(|n| covered_key(e, n));
            let keys = (own.media != 0).then_some(e).into_iter().chain(derived);
            for k in keys {
                let Some(m) = st.engine_map.peek(&k) else {
                    report.unplaceable += 1;
                    continue;
                };
                let fp = fingerprint(seed, m.router_key);
                if self.table.clear(fp, tier, ep) {
                    report.removed += 1;
                    report.removed_by_tier[tier] += 1;
                    report.note_removed(fp, tier);
                }
                let media = m.media & !(1 << tier);
                if media == 0 {
                    st.engine_map.remove(&k);
                } else {
                    st.engine_map.update(&k, Mapped { media, ..m });
                }
            }
            // A waiting block's mapping goes with its GPU copy, once no
            // derived mapping is left (held in another tier, its removal
            // there must still find them).
            let derived_left =
                || (1..=own.covered).any(|n| st.engine_map.peek(&covered_key(e, n)).is_some());
            if own.media == 0 && gpu && !derived_left() {
                st.engine_map.remove(&e);
            }
        }
        st.scratch = (keys, routers, buf);
        shrink_scratch(st);
    }
}

/// Scratch capacity kept between events: one huge event does not leave its
/// buffers' memory with the endpoint slot for good.
const SCRATCH_KEPT: usize = 1 << 14;

fn shrink_scratch(st: &mut EndpointState) {
    let (a, b, c) = &mut st.scratch;
    a.shrink_to(SCRATCH_KEPT);
    b.shrink_to(SCRATCH_KEPT);
    c.shrink_to(SCRATCH_KEPT * 4);
}
