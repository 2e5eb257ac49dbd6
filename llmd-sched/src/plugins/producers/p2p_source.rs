//! `p2p-source-producer` (llm-d-router, Alpha): names the peer holding the
//! most of the request's prefix, so the computing engine can pull those KV
//! blocks from it instead of recomputing them (`x-kv-cache-source-host-port`).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decided, EndpointIndex, PreRequest};

use super::APPROX_PRODUCER;

/// The request header naming the KV source peer.
pub const HEADER: &str = "x-kv-cache-source-host-port";

/// After the decision: among the endpoints with a cached prefix, those within
/// one block of the largest take part, weighted `1 / (1 + waiting queue)`,
/// and one is chosen deterministically from the request id (FNV-1a 32 of the
/// id over the summed weights). The header is set to its address when it is
/// not the computing endpoint (the `prefill` profile's pick when there is
/// one, else the primary) and holds at least `minCachedTokenDelta` more
/// cached tokens than it; an incoming header of that name is always removed.
///
/// Cached tokens are the producer's consecutive cached blocks × block size,
/// every tier together (llm-d counts the CPU tier alone when its producer
/// reports tiers; the prefix data here carries no per-tier split).
#[derive(Clone, Debug)]
pub struct P2pSourceProducer {
    /// `prefixMatchInfoProducerName` (the approximate producer by default).
    pub producer: String,
    /// `minCachedTokenDelta` (1, ≥ 1).
    pub min_delta: u64,
    /// `prefillProfileName` (`prefill`).
    pub prefill_profile: String,
}

impl P2pSourceProducer {
    /// Decodes llm-d's parameters.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let producer = p.string("prefixMatchInfoProducerName", "")?;
        let producer = if producer.is_empty() {
            APPROX_PRODUCER.to_string()
        } else {
            producer
        };
        let min_delta = p.i64("minCachedTokenDelta", 1)?;
        if min_delta < 1 {
            return Err(p.err(
                "minCachedTokenDelta",
                format!("must be >= 1, got {min_delta}"),
            ));
        }
        let prefill_profile = p.string("prefillProfileName", "prefill")?;
        Ok(P2pSourceProducer {
            producer,
            min_delta: min_delta as u64,
            prefill_profile,
        })
    }

    fn cached(&self, ctx: &CycleContext<'_>, i: EndpointIndex) -> u64 {
        ctx.prefix_info(&self.producer)
            .and_then(|info| {
                Some(u64::from(info.get(i)?.cached_blocks) * u64::from(info.block_size))
            })
            .unwrap_or(0)
    }

    /// The chosen source and its cached tokens, if any endpoint has a prefix.
    fn best(&self, ctx: &CycleContext<'_>) -> Option<(EndpointIndex, u64)> {
        let info = ctx.prefix_info(&self.producer)?;
        let bs = u64::from(info.block_size);
        let cached: Vec<(EndpointIndex, u64)> = (0..ctx.endpoints().len())
            .map(|i| (i, self.cached(ctx, i)))
            .filter(|&(_, c)| c > 0)
            .collect();
        let max = cached.iter().map(|c| c.1).max()?;
        let band: Vec<(EndpointIndex, u64, f64)> = cached
            .into_iter()
            .filter(|&(_, c)| c + bs >= max)
            .map(|(i, c)| {
                (
                    i,
                    c,
                    1.0 / (1.0 + f64::from(ctx.endpoint(i).waiting_queue_size())),
                )
            })
            .collect();
        let total: f64 = band.iter().map(|b| b.2).sum();
        let mut target = f64::from(fnv1a32(ctx.request().id.as_bytes())) / 4_294_967_296.0 * total;
        for &(i, c, w) in &band {
            if target < w {
                return Some((i, c));
            }
            target -= w;
        }
        band.last().map(|&(i, c, _)| (i, c))
    }
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl PreRequest for P2pSourceProducer {
    fn pre_request(&self, _ctx: &CycleContext<'_>, _decided: &Decided<'_>) {}

    fn request_headers(
        &self,
        ctx: &CycleContext<'_>,
        decided: &Decided<'_>,
        set: &mut Vec<(String, String)>,
        remove: &mut Vec<String>,
    ) {
        remove.push(HEADER.to_string());
        let Some((best, best_cached)) = self.best(ctx) else {
            return;
        };
        let computing = decided
            .pick_of(&self.prefill_profile)
            .or_else(|| decided.targets.first().copied());
        let Some(computing) = computing else { return };
        let (best_addr, computing_addr) = (
            ctx.endpoint(best).address(),
            ctx.endpoint(computing).address(),
        );
        if best_addr == computing_addr {
            return;
        }
        if best_cached.saturating_sub(self.cached(ctx, computing)) < self.min_delta {
            return;
        }
        set.push((HEADER.to_string(), best_addr.to_string()));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a32_matches_the_reference() {
        assert_eq!(super::fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(super::fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(super::fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
