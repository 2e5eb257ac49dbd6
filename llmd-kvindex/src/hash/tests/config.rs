//! Configuration rules: versions, algorithm availability, seeds, schemas.

use crate::hash::{
    BlockHasher, ExtraKeySchema, HashAlgo, HashError, HasherConfig, LoraRef, MmItem, PromptEmbeds,
    RequestExtras, VllmVersion,
};

#[test]
fn versions_parse_and_order() {
    let v: VllmVersion = "0.10.1.1".parse().unwrap();
    assert_eq!((v.major, v.minor, v.patch, v.post), (0, 10, 1, 1));
    assert_eq!(v.to_string(), "0.10.1.1");
    assert!(v < VllmVersion::new(0, 10, 2));
    assert_eq!(
        "v0.33.0+cu128".parse::<VllmVersion>().unwrap(),
        VllmVersion::NEWEST
    );
    assert_eq!("0.33".parse::<VllmVersion>().unwrap(), VllmVersion::NEWEST);
    for bad in ["", "0", "0.x.1", "0.1.2.3.4", "0..1", "0.11.0rc1"] {
        assert!(
            matches!(
                bad.parse::<VllmVersion>(),
                Err(HashError::InvalidVersion(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn algorithms_round_trip_their_names() {
    for algo in HashAlgo::ALL {
        assert_eq!(algo.as_str().parse::<HashAlgo>().unwrap(), algo);
        assert_eq!(algo.to_string(), algo.as_str());
    }
    assert!(matches!(
        "builtin".parse::<HashAlgo>(),
        Err(HashError::UnknownAlgo(_))
    ));
}

#[test]
fn schema_follows_the_release() {
    let schema = |v: &str| ExtraKeySchema::for_version(v.parse().unwrap());
    assert_eq!(schema("0.10.0"), ExtraKeySchema::V0_11_0);
    assert_eq!(schema("0.11.0"), ExtraKeySchema::V0_11_0);
    assert_eq!(schema("0.11.1"), ExtraKeySchema::V0_11_1);
    assert_eq!(schema("0.18.1"), ExtraKeySchema::V0_11_1);
    assert_eq!(schema("0.19.0"), ExtraKeySchema::V0_19);
    assert_eq!(schema("0.30.0"), ExtraKeySchema::V0_19);
    assert_eq!(schema("0.31.0"), ExtraKeySchema::V0_31);
}

#[test]
fn unreproducible_configurations_are_errors() {
    let cfg = |v, a, b, s| HasherConfig::for_vllm(v, a, b, s);
    assert!(matches!(
        cfg("0.9.2", HashAlgo::Sha256, 16, Some("0")),
        Err(HashError::UnsupportedVersion(_))
    ));
    assert!(matches!(
        cfg("0.34.0", HashAlgo::Sha256, 16, Some("0")),
        Err(HashError::UnsupportedVersion(_))
    ));
    assert!(matches!(
        cfg("0.12.0", HashAlgo::Xxhash, 16, Some("0")),
        Err(HashError::AlgoNotAvailable { .. })
    ));
    assert!(matches!(
        cfg("0.10.1.1", HashAlgo::Sha256, 16, Some("0")),
        Err(HashError::AlgoNotAvailable { .. })
    ));
    assert!(matches!(
        cfg("0.10.2", HashAlgo::Sha256Cbor64Bit, 16, Some("0")),
        Err(HashError::AlgoNotAvailable { .. })
    ));
    assert!(matches!(
        cfg("0.33.0", HashAlgo::Sha256, 0, Some("0")),
        Err(HashError::ZeroBlockSize)
    ));
    // Unset seed: random before 0.29, and always random for xxhash.
    assert!(matches!(
        cfg("0.28.0", HashAlgo::Sha256, 16, None),
        Err(HashError::RandomNoneHash { .. })
    ));
    assert!(matches!(
        cfg("0.33.0", HashAlgo::XxhashCbor, 16, None),
        Err(HashError::RandomNoneHash { .. })
    ));
    assert!(matches!(
        cfg("0.10.0", HashAlgo::Sha256Cbor64Bit, 16, None),
        Err(HashError::RandomNoneHash { .. })
    ));
    assert!(cfg("0.29.0", HashAlgo::Sha256Cbor, 16, None).is_ok());
    let mut mismatched = cfg("0.33.0", HashAlgo::Sha256, 16, None).unwrap();
    mismatched.schema = ExtraKeySchema::V0_19;
    assert!(matches!(
        BlockHasher::new(mismatched),
        Err(HashError::SchemaMismatch { .. })
    ));
    let msg = cfg("0.20.0", HashAlgo::Sha256, 16, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("PYTHONHASHSEED"), "{msg}");
}

#[test]
fn default_is_newest_with_unset_seed() {
    let cfg = HasherConfig::default();
    assert_eq!(
        cfg,
        HasherConfig::for_vllm("latest", HashAlgo::Sha256, 16, None).unwrap()
    );
    let hasher = BlockHasher::new(cfg).unwrap();
    let seeded =
        HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256, 16, Some("vllm-none-hash")).unwrap();
    assert_eq!(
        hasher.none_hash(),
        BlockHasher::new(seeded).unwrap().none_hash()
    );
}

#[test]
fn bad_request_extras_are_errors() {
    let hasher = BlockHasher::new(
        HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 4, Some("")).unwrap(),
    )
    .unwrap();
    let toks = [1u32; 8];
    let no_path = RequestExtras {
        lora: Some(LoraRef {
            id: Some(1),
            name: Some("a".into()),
            path: None,
        }),
        ..Default::default()
    };
    assert!(matches!(
        hasher.block_keys(&toks, &no_path),
        Err(HashError::MissingLoraField { field: "path", .. })
    ));
    let item = |offset| MmItem {
        identifier: "i".into(),
        offset,
        length: 2,
    };
    let unsorted = RequestExtras {
        mm_items: vec![item(5), item(1)],
        ..Default::default()
    };
    assert!(matches!(
        hasher.block_keys(&toks, &unsorted),
        Err(HashError::InvalidMmItem { index: 1, .. })
    ));
    let short = RequestExtras {
        prompt_embeds: Some(PromptEmbeds {
            data: vec![0; 4 * 7],
            row_bytes: 4,
        }),
        ..Default::default()
    };
    assert!(matches!(
        hasher.block_keys(&toks, &short),
        Err(HashError::EmbeddingsTooShort { .. })
    ));
    assert_eq!(hasher.block_keys(&toks[..7], &short).unwrap().len(), 1);
    let mut chain = hasher.chain(short);
    chain.extend(&toks[..3]).unwrap();
    assert!(chain.extend(&toks[3..]).is_err());
    assert_eq!(
        (chain.keys().len(), chain.num_tokens()),
        (0, 3),
        "failed extend changes nothing"
    );
    assert_eq!(chain.extend(&toks[3..7]).unwrap().len(), 1);
}

#[test]
fn hashers_and_chains_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shareable::<BlockHasher>();
    shareable::<crate::hash::HashChain>();
}
