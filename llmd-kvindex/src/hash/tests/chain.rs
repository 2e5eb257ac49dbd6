//! Incremental hashing equals hashing the whole sequence.

use proptest::prelude::*;

use crate::hash::{BlockHasher, HashAlgo, HasherConfig, LoraRef, MmItem, RequestExtras};

fn extras(kind: u8) -> RequestExtras {
    match kind {
        0 => RequestExtras::default(),
        1 => RequestExtras {
            lora: Some(LoraRef {
                id: Some(3),
                name: Some("l".into()),
                path: Some("p".into()),
            }),
            cache_salt: Some("salt".into()),
            ..Default::default()
        },
        _ => RequestExtras {
            mm_items: vec![
                MmItem {
                    identifier: "a".into(),
                    offset: 3,
                    length: 9,
                },
                MmItem {
                    identifier: "b".into(),
                    offset: 20,
                    length: 40,
                },
            ],
            cache_salt: Some("x".into()),
            ..Default::default()
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn incremental_equals_whole(
        algo in 0usize..4,
        version in prop::sample::select(vec!["0.13.0", "0.19.0", "0.33.0"]),
        block_size in 1usize..24,
        kind in 0u8..3,
        tokens in prop::collection::vec(any::<u32>().prop_map(|t| t >> (t % 32)), 0..200),
        cuts in prop::collection::vec(0usize..200, 0..8),
    ) {
        let algo = [HashAlgo::Sha256, HashAlgo::Sha256Cbor, HashAlgo::Xxhash, HashAlgo::XxhashCbor][algo];
        let cfg = HasherConfig::for_vllm(version, algo, block_size, Some("42")).unwrap();
        let hasher = BlockHasher::new(cfg).unwrap();
        let whole = hasher.block_keys(&tokens, &extras(kind)).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(tokens.len())).collect();
        cuts.sort_unstable();
        let mut chain = hasher.chain(extras(kind));
        let mut from = 0;
        let mut seen = Vec::new();
        for cut in cuts.into_iter().chain([tokens.len()]) {
            seen.extend_from_slice(chain.extend(&tokens[from..cut]).unwrap());
            from = cut;
        }
        prop_assert_eq!(chain.keys(), whole.as_slice());
        prop_assert_eq!(seen, whole);
        prop_assert_eq!(chain.num_tokens(), tokens.len());
    }
}
