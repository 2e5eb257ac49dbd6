//! `mm-embeddings-cache-producer` and `mm-embeddings-cache-scorer`: route a
//! multimodal request to an endpoint whose encoder cache likely still holds
//! its images (llm-d's multimodal encoder-cache affinity).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decided, EndpointIndex, PreRequest, Producer, Scorer};

/// Bytes one item is assumed to take in an encoder cache (llm-d: 2 MiB).
const BYTES_PER_ITEM: u64 = 2 * 1024 * 1024;

/// The items routed to one endpoint, least recently routed first out.
#[derive(Debug, Default)]
struct Lru {
    tick: u64,
    by_item: HashMap<String, u64>,
    order: BTreeMap<u64, String>,
}

impl Lru {
    fn add(&mut self, item: &str, cap: usize) {
        self.tick += 1;
        if let Some(old) = self.by_item.insert(item.to_string(), self.tick) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, item.to_string());
        while self.by_item.len() > cap {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.by_item.remove(&oldest);
        }
    }
}

/// Per endpoint, an LRU of the multimodal items routed there, sized by
/// `cacheSizeInMBPerServer` (default 4096 MiB, i.e. 2,048 items of 2 MiB).
/// At each pick it publishes, per candidate, how many of the request's items
/// (`Request::mm_items`) it holds, without refreshing them; after the
/// decision the items are added to the primary targets' LRUs. An endpoint's
/// LRU goes when it leaves the pool.
#[derive(Debug)]
pub struct MmEmbeddingsCacheProducer {
    /// Items each endpoint's LRU holds.
    pub capacity: usize,
    caches: Mutex<HashMap<u64, Lru>>,
}

impl MmEmbeddingsCacheProducer {
    /// Decodes `cacheSizeInMBPerServer` (≤ 0 or absent: 4096, as llm-d).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let mb = p.i64("cacheSizeInMBPerServer", 4096)?;
        let mb = if mb <= 0 { 4096 } else { mb as u64 };
        let capacity = (mb.saturating_mul(1024 * 1024) / BYTES_PER_ITEM).max(1) as usize;
        Ok(MmEmbeddingsCacheProducer {
            capacity,
            caches: Mutex::new(HashMap::new()),
        })
    }
}

impl Producer for MmEmbeddingsCacheProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let items = &ctx.request().mm_items;
        let mut out = vec![None; ctx.endpoints().len()];
        if !items.is_empty() {
            let caches = self.caches.lock();
            for &i in candidates {
                let held = caches.get(&ctx.endpoint(i).uid()).map_or(0, |c| {
                    items.iter().filter(|h| c.by_item.contains_key(*h)).count()
                });
                out[i] = Some((held as u32, items.len() as u32));
            }
        }
        ctx.set_encoder_matches(out);
    }

    fn on_endpoint_added(&self, uid: u64) -> Result<(), crate::ScheduleError> {
        self.caches.lock().entry(uid).or_default();
        Ok(())
    }

    fn on_endpoint_removed(&self, uid: u64) {
        self.caches.lock().remove(&uid);
    }
}

impl PreRequest for MmEmbeddingsCacheProducer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        let items = &ctx.request().mm_items;
        if items.is_empty() {
            return;
        }
        let mut caches = self.caches.lock();
        for &t in decided.targets {
            // Only endpoints still registered: a decision racing a removal
            // must not bring the removed endpoint's cache back.
            let Some(lru) = caches.get_mut(&ctx.endpoint(t).uid()) else {
                continue;
            };
            for item in items {
                lru.add(item, self.capacity);
            }
        }
    }
}

/// `mm-embeddings-cache-scorer`: the share of the request's items the
/// endpoint's encoder cache holds (0 without items or without the producer).
#[derive(Clone, Copy, Debug, Default)]
pub struct MmEmbeddingsCacheScorer;

impl Scorer for MmEmbeddingsCacheScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(candidates) {
            *o = match ctx.encoder_match(i) {
                Some((held, total)) if total > 0 => f64::from(held) / f64::from(total),
                _ => 0.0,
            };
        }
    }
}

/// The shared producer handle kept by the registry (producer and hook).
pub fn producer(p: &mut Params) -> Result<Arc<MmEmbeddingsCacheProducer>, ConfigError> {
    Ok(Arc::new(MmEmbeddingsCacheProducer::from_params(p)?))
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn lru_keeps_the_most_recent() {
        let mut l = Lru::default();
        for i in ["a", "b", "c", "a", "d"] {
            l.add(i, 3);
        }
        let mut held: Vec<_> = l.by_item.keys().cloned().collect();
        held.sort();
        assert_eq!(held, ["a", "c", "d"]);
    }
}
