//! Plugin types of earlier llm-d releases and the other profile handlers:
//! `kv-cache-scorer` (v0.2), `header-profile-handler`,
//! `data-parallel-profile-handler`, and the deprecated header writers.

mod common;

use common::*;
use llmd_sched::{Request, ScheduleError, Scheduler};

fn req(headers: &[(&str, &str)]) -> Request {
    let mut r = Request::with_tokens("r", "m", tokens(32, 1));
    for (k, v) in headers {
        r.headers.insert(k.to_string(), v.to_string());
    }
    r
}

#[test]
fn kv_cache_scorer_is_the_v0_2_name_of_the_utilization_scorer() {
    let (s, _) = sched(&single(
        "- type: kv-cache-scorer\n- type: max-score-picker\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.25))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.75))).unwrap();
    let by = raw_scores(&s, &req(&[]), "default", "kv-cache-scorer");
    assert_eq!((by["e1"], by["e2"]), (0.75, 0.25));
}

fn two_profiles(handler: &str) -> Scheduler {
    let yaml = format!(
        "{HEAD}plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
- {handler}
schedulingProfiles:
- name: decode
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
- name: by-kv
  plugins:
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: max-score-picker
"
    );
    let (s, _) = sched(&yaml);
    // e1: short queue, full cache; e2: long queue, empty cache.
    s.add_endpoint(ep("e1", metrics(0, 0, 0.9))).unwrap();
    s.add_endpoint(ep("e2", metrics(5, 0, 0.1))).unwrap();
    s
}

#[test]
fn header_profile_handler_runs_the_named_profile() {
    let s = two_profiles("type: header-profile-handler");
    assert_eq!(
        s.pick(&req(&[])).unwrap().targets[0].name,
        "e1",
        "default: decode"
    );
    let d = s.pick(&req(&[("epp-profile", " by-kv ")])).unwrap();
    assert_eq!(d.targets[0].name, "e2");
    assert_eq!(d.explanation.primary_profile.as_deref(), Some("by-kv"));
    let e = s.pick(&req(&[("EPP-Profile", "nope")])).unwrap_err();
    assert!(matches!(e, ScheduleError::ResourceExhausted { .. }), "{e}");
    // Custom header and default.
    let s = two_profiles(
        "type: header-profile-handler\n  parameters: {headerName: X-Stage, defaultProfile: by-kv}",
    );
    assert_eq!(s.pick(&req(&[])).unwrap().targets[0].name, "e2");
    assert_eq!(
        s.pick(&req(&[("x-stage", "decode")])).unwrap().targets[0].name,
        "e1"
    );
}

/// A `defaultProfile` no scheduling profile is named after loads (as in
/// llm-d: requests with the header still route) but is reported, since every
/// request without the header is refused; a strict load refuses it. With one
/// profile the handler always runs it, so nothing is reported.
#[test]
fn header_profile_handler_reports_a_default_profile_that_does_not_exist() {
    let handler = "type: header-profile-handler\n  parameters: {defaultProfile: prefil}";
    let s = two_profiles(handler);
    let lines = s.config_report().not_executed_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("defaultProfile") && l.contains("'prefil'") && l.contains("429")),
        "{lines:?}"
    );
    assert!(s.pick(&req(&[])).is_err());
    assert_eq!(
        s.pick(&req(&[("epp-profile", "by-kv")])).unwrap().targets[0].name,
        "e2"
    );
    let yaml = format!(
        "{HEAD}plugins:\n- type: max-score-picker\n- {handler}\nschedulingProfiles:\n- name: decode\n  plugins:\n  - pluginRef: max-score-picker\n- name: by-kv\n  plugins:\n  - pluginRef: max-score-picker\n"
    );
    let strict = llmd_sched::LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = Scheduler::from_config_str_with(&yaml, strict).unwrap_err();
    assert!(e.to_string().contains("defaultProfile"), "{e}");
    let one =
        Scheduler::from_config_str(&single(&format!("- type: max-score-picker\n- {handler}\n")))
            .unwrap();
    assert!(one.config_report().not_executed_lines().is_empty());
    assert!(two_profiles("type: header-profile-handler")
        .config_report()
        .not_executed_lines()
        .is_empty());
}

#[test]
fn data_parallel_profile_handler_sends_the_rank_in_a_header() {
    let yaml = single(
        "- type: queue-scorer\n- type: max-score-picker\n- type: data-parallel-profile-handler\n  parameters: {primaryPort: 8200}\n",
    );
    let (s, _) = sched(&yaml);
    let mut rank = ep("e1", metrics(0, 0, 0.0));
    rank.address = "10.0.0.1:8003".into();
    s.add_endpoint(rank).unwrap();
    let d = s.pick(&req(&[])).unwrap();
    assert_eq!(d.targets[0].address, "10.0.0.1:8200");
    assert_eq!(d.header("x-data-parallel-host-port"), Some("10.0.0.1:8003"));
    assert_eq!(
        d.header("x-gateway-destination-endpoint"),
        Some("10.0.0.1:8200")
    );
    // Exactly one profile.
    let two = two_profiles("type: data-parallel-profile-handler");
    assert!(two.pick(&req(&[])).is_err());
    let e = Scheduler::from_config_str(&single(
        "- type: max-score-picker\n- type: data-parallel-profile-handler\n  parameters: {primaryPort: 70000}\n",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("primaryPort"), "{e}");
}

#[test]
fn deprecated_header_writers_load_and_say_what_they_do_not_do() {
    for ty in ["disagg-headers-handler", "prefill-header-handler"] {
        let s = Scheduler::from_config_str(&single(&format!(
            "- type: max-score-picker\n- type: {ty}\n  parameters: {{prefillProfile: pf}}\n"
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = s.config_report();
        let p = r.plugin(ty).unwrap();
        assert_eq!(p.settings_not_executed.len(), 1, "{p:?}");
        assert_eq!(p.settings_not_executed[0].setting, "prefillProfile");
        assert!(
            r.warnings.iter().any(|w| w.contains(ty)),
            "deprecation warned: {:?}",
            r.warnings
        );
    }
}

fn pd_legacy(handler_params: &str, extra_plugins: &str) -> Result<Scheduler, ScheduleError> {
    let yaml = format!(
        "{HEAD}plugins:
- type: decode-filter
- type: prefill-filter
- type: queue-scorer
- type: max-score-picker
{extra_plugins}- type: pd-profile-handler
  parameters: {handler_params}
schedulingProfiles:
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
"
    );
    let s = Scheduler::from_config_str(&yaml)?.with_seed(1);
    let mut d = ep("e-d", metrics(0, 0, 0.0));
    d.address = "10.0.0.1:8003".into();
    d.labels.insert("llm-d.ai/role".into(), "decode".into());
    let mut p = ep("e-p", metrics(0, 0, 0.0));
    p.address = "10.0.0.2:8000".into();
    p.labels.insert("llm-d.ai/role".into(), "prefill".into());
    s.add_endpoint(d)?;
    s.add_endpoint(p)?;
    Ok(s)
}

#[test]
fn pd_profile_handler_in_every_release_form() {
    // v0.6+: a named decider and a primary port for data-parallel decode pods.
    let s = pd_legacy(
        "{deciderPluginName: always, primaryPort: 8200, prefixPluginName: prefix-cache-scorer}",
        "- name: always\n  type: always-disagg-pd-decider\n",
    )
    .unwrap();
    let d = s.pick(&req(&[])).unwrap();
    assert_eq!(d.targets[0].address, "10.0.0.1:8200");
    assert_eq!(d.header("x-data-parallel-host-port"), Some("10.0.0.1:8003"));
    assert_eq!(d.prefill_target.as_ref().unwrap().name, "e-p");
    assert_eq!(d.header("x-prefiller-host-port"), Some("10.0.0.2:8000"));
    // v0.2-v0.5: threshold 0 always disaggregates; a large one (characters)
    // keeps a short prompt on the decode pod; hashBlockSize is reported.
    let s = pd_legacy("{threshold: 0, hashBlockSize: 64}", "").unwrap();
    assert!(s.pick(&req(&[])).unwrap().prefill_target.is_some());
    let r = s.config_report();
    assert_eq!(
        r.plugin("pd-profile-handler")
            .unwrap()
            .settings_not_executed[0]
            .setting,
        "hashBlockSize"
    );
    // A threshold beside a named decider is not executed, and says so.
    let s = pd_legacy(
        "{deciderPluginName: always, threshold: 100000}",
        "- name: always\n  type: always-disagg-pd-decider\n",
    )
    .unwrap();
    assert!(s.pick(&req(&[])).unwrap().prefill_target.is_some());
    let r = s.config_report();
    let pd = r.plugin("pd-profile-handler").unwrap();
    assert_eq!(pd.settings_not_executed[0].setting, "threshold", "{pd:?}");
    let s = pd_legacy("{threshold: 100000}", "").unwrap();
    let d = s.pick(&req(&[])).unwrap();
    assert!(d.prefill_target.is_none() && d.targets[0].address == "10.0.0.1:8003");
    assert!(s
        .config_report()
        .plugin("pd-profile-handler")
        .unwrap()
        .remark
        .as_deref()
        .is_some_and(|m| m.contains("4 per token")));
    // Neither form and no prefix-based-pd-decider: the old default.
    let s = pd_legacy("{}", "").unwrap();
    assert!(s.pick(&req(&[])).unwrap().prefill_target.is_some());
    // The v0.7 default decider name, when configured, is used.
    let s = pd_legacy(
        "{}",
        "- type: prefix-based-pd-decider\n  parameters: {nonCachedTokens: 100000}\n",
    )
    .unwrap();
    assert!(s.pick(&req(&[])).unwrap().prefill_target.is_none());
    let e = pd_legacy("{deciderPluginName: nope}", "").err().unwrap();
    assert!(e.to_string().contains("deciderPluginName"), "{e}");
}

#[test]
fn prefix_cache_scorer_in_its_v0_2_form_estimate() {
    let (s, _) = sched(&single(
        "- type: prefix-cache-scorer\n  parameters: {hashBlockSize: 256, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}\n- type: max-score-picker\n",
    ));
    let r = s.config_report();
    let p = r.plugin("prefix-cache-scorer").unwrap();
    assert!(
        p.remark
            .as_deref()
            .is_some_and(|m| m.contains("hashBlockSize/4")),
        "{p:?}"
    );
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    let prompt = tokens(512, 7);
    let first = s
        .pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap();
    let by = raw_scores(
        &s,
        &Request::with_tokens("b", "m", prompt),
        "default",
        "prefix-cache-scorer",
    );
    assert_eq!(
        by[&first.targets[0].name], 1.0,
        "the routed prompt is remembered: {by:?}"
    );
}

/// The v0.2 – v0.3 form matched `maxPrefixBlocksToMatch` blocks of
/// `hashBlockSize` characters: 4 blocks of 64 characters are 64 tokens, one
/// block at today's 64-token floor, however many blocks the prompt has.
#[test]
fn the_v0_2_estimate_form_matches_as_far_into_a_prompt_as_it_did() {
    let (s, _) = sched(&single(
        "- type: prefix-cache-scorer\n  parameters: {hashBlockSize: 64, maxPrefixBlocksToMatch: 4}\n- type: max-score-picker\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    let routed = tokens(512, 7);
    let first = s
        .pick(&Request::with_tokens("a", "m", routed.clone()))
        .unwrap();
    // The same first 64 tokens, then another prompt: a whole match then
    // (with 4 blocks of 64 tokens it would be 1 of 4).
    let mut other = routed[..64].to_vec();
    other.extend(tokens(448, 99));
    let by = raw_scores(
        &s,
        &Request::with_tokens("b", "m", other),
        "default",
        "prefix-cache-scorer",
    );
    assert_eq!(by[&first.targets[0].name], 1.0, "{by:?}");
}

#[test]
fn prefix_cache_scorer_in_its_v0_2_form_cache_tracking() {
    let (s, _) = sched(&single(
        "- type: prefix-cache-scorer
  parameters:
    mode: cache_tracking
    indexerConfig:
      prefixStoreConfig: {cacheSize: 500000, blockSize: 256}
      tokenProcessorConfig: {blockSize: 16, hashSeed: \"12345\"}
      kvBlockIndexConfig:
        inMemoryConfig: {size: 100000, podCacheSize: 10}
      tokenizersPoolConfig: {workersCount: 8}
    kvEventsConfig: {zmqEndpoint: \"tcp://*:5557\", topicFilter: \"kv@\", concurrency: 4}
- type: max-score-picker
",
    ));
    let r = s.config_report();
    let p = r.plugin("prefix-cache-scorer").unwrap();
    let settings: Vec<&str> = p
        .settings_not_executed
        .iter()
        .map(|x| x.setting.as_str())
        .collect();
    for want in [
        "indexerConfig.prefixStoreConfig",
        "indexerConfig.tokenizersPoolConfig",
        "kvEventsConfig.zmqEndpoint",
        "tokenProcessorConfig.hashSeed",
    ] {
        assert!(settings.contains(&want), "{want} not in {settings:?}");
    }
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    let prompt = tokens(64, 3);
    s.ingest_kv_events("e2", &batch(vec![stored(1, None, &prompt, None)]), None)
        .unwrap();
    let by = raw_scores(
        &s,
        &Request::with_tokens("r", "m", prompt),
        "default",
        "prefix-cache-scorer",
    );
    assert_eq!((by["e1"], by["e2"]), (0.0, 1.0));
    let e = Scheduler::from_config_str(&single(
        "- type: prefix-cache-scorer\n  parameters: {mode: psychic}\n- type: max-score-picker\n",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("mode"), "{e}");
}

fn example(name: &str) -> Scheduler {
    let path = format!(
        "{}/../testdata/llm-d-configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = Scheduler::from_config_file(&path)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .with_seed(2);
    for (i, (name, role)) in [("d1", "decode"), ("d2", "decode"), ("p1", "prefill")]
        .iter()
        .enumerate()
    {
        let mut e = ep(name, metrics(0, 0, 0.0));
        e.address = format!("10.0.0.{}:800{i}", i + 1);
        e.labels.insert("llm-d.ai/role".into(), role.to_string());
        s.add_endpoint(e).unwrap();
    }
    s
}

#[test]
fn example_08_v0_2_era_routes_by_kv_events_and_a_character_threshold() {
    let s = example("08-v0.2-era-cache-tracking-pd.yaml");
    assert!(s
        .config_report()
        .warnings
        .iter()
        .any(|w| w.contains("deprecated")));
    // A 64-token prompt (~256 characters) is under the 400-character threshold.
    let prompt = tokens(64, 5);
    s.ingest_kv_events("d2", &batch(vec![stored(1, None, &prompt, None)]), None)
        .unwrap();
    let d = s.pick(&Request::with_tokens("a", "m", prompt)).unwrap();
    assert_eq!(d.targets[0].name, "d2", "the decode pod holding the prompt");
    assert!(d.prefill_target.is_none());
    // A long uncached prompt goes to remote prefill.
    let d = s
        .pick(&Request::with_tokens("b", "m", tokens(512, 9)))
        .unwrap();
    assert_eq!(d.prefill_target.as_ref().unwrap().name, "p1");
    assert_eq!(d.header("x-prefiller-host-port"), Some("10.0.0.3:8002"));
}

#[test]
fn example_09_v0_6_era_uses_the_named_decider_and_the_primary_port() {
    let s = example("09-v0.6-era-pd-decider-data-parallel.yaml");
    let d = s
        .pick(&Request::with_tokens("a", "m", tokens(512, 1)))
        .unwrap();
    assert_eq!(d.prefill_target.as_ref().unwrap().name, "p1");
    let rank = d.header("x-data-parallel-host-port").unwrap().to_string();
    assert!(rank.ends_with(":8000") || rank.ends_with(":8001"), "{rank}");
    assert!(d.targets[0].address.ends_with(":8000"));
    // A short prompt stays on the decode pod (fewer than 256 uncached tokens).
    let d = s
        .pick(&Request::with_tokens("b", "m", tokens(64, 2)))
        .unwrap();
    assert!(d.prefill_target.is_none());
}

#[test]
fn examples_10_to_15_route_as_their_releases_did() {
    // v0.3: a 10-character threshold sends almost every new prompt to prefill.
    let s = example("10-v0.3-era-pd-character-threshold.yaml");
    let d = s
        .pick(&Request::with_tokens("a", "m", tokens(128, 1)))
        .unwrap();
    assert_eq!(d.prefill_target.as_ref().unwrap().name, "p1");
    assert!(d.targets[0].name.starts_with('d'));
    // v0.4 (token processor inside indexerConfig) and v0.5 (at the top level)
    // build the same precise index, 64-token blocks, on the decode pods only.
    for name in [
        "11-v0.4-era-precise-scorer-nested-token-processor.yaml",
        "12-v0.5-era-precise-scorer.yaml",
    ] {
        let s = example(name);
        let prompt = tokens(256, 3);
        let ids: Vec<u64> = prompt.iter().map(|&t| u64::from(t)).collect();
        let ev = llmd_kvindex::events::KvEvent::BlockStored(llmd_kvindex::events::BlockStored {
            block_hashes: (1..=4).map(llmd_kvindex::events::HashValue::Int).collect(),
            token_ids: ids,
            block_size: 64,
            ..Default::default()
        });
        s.ingest_kv_events("d2", &batch(vec![ev]), None).unwrap();
        let d = s.pick(&Request::with_tokens("p", "m", prompt)).unwrap();
        assert_eq!(
            d.targets[0].name, "d2",
            "{name}: the decode pod holding the prompt"
        );
        let lines = s.config_report().not_executed_lines().join("\n");
        assert!(lines.contains("hashSeed"), "{name}: {lines}");
    }
    // v0.8: one profile, decode pods only, approximate prefix routing.
    let s = example("13-v0.8-era-prefix-decode.yaml");
    let first = s
        .pick(&Request::with_tokens("a", "m", tokens(512, 4)))
        .unwrap()
        .targets[0]
        .name
        .clone();
    assert!(first.starts_with('d'));
    let again = s
        .pick(&Request::with_tokens("b", "m", tokens(512, 4)))
        .unwrap();
    assert_eq!(
        again.targets[0].name, first,
        "the approximate index remembers"
    );
    // v0.9 and v0.10: disagg-profile-handler with the prefix-based decider.
    for name in [
        "14-v0.9-era-pd-approx-producer.yaml",
        "15-v0.10-era-pd-max-prefix-tokens.yaml",
    ] {
        let s = example(name);
        let d = s
            .pick(&Request::with_tokens("a", "m", tokens(512, 6)))
            .unwrap();
        assert_eq!(d.prefill_target.as_ref().unwrap().name, "p1", "{name}");
        let d = s
            .pick(&Request::with_tokens("b", "m", tokens(8, 6)))
            .unwrap();
        assert!(d.prefill_target.is_none(), "{name}: 8 tokens stay local");
    }
    // v0.8's P/D file named a feature gate its own loader no longer knew.
    let path = format!(
        "{}/../testdata/llm-d-configs/refused/13-v0.8-era-pd-prepare-data-plugins.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = Scheduler::from_config_file(&path).unwrap_err().to_string();
    assert!(e.contains("prepareDataPlugins"), "{e}");
}

/// The deprecated all-in-one `precise-prefix-cache-scorer` beside a
/// `precise-prefix-cache-producer` binds to that producer, as llm-d since
/// v0.9 does: one index fed by the events, the scorer's own settings
/// reported as not used; beside two producers it cannot choose.
#[test]
fn legacy_precise_scorer_binds_to_the_configured_producer() {
    let yaml = format!(
        "{HEAD}plugins:
- type: precise-prefix-cache-producer
  name: precise
  parameters:
    kvEventsConfig: {{discoverPods: false}}
- type: precise-prefix-cache-scorer
  parameters:
    tokenProcessorConfig: {{blockSize: 64}}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise-prefix-cache-scorer
  - pluginRef: max-score-picker
"
    );
    let (s, _) = sched(&yaml);
    for e in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(e, metrics(0, 0, 0.1))).unwrap();
    }
    let prompt = tokens(64, 7);
    s.ingest_kv_events("e2", &batch(vec![stored(1, None, &prompt, None)]), None)
        .unwrap();
    let by = raw_scores(
        &s,
        &Request::with_tokens("r", "m", prompt.clone()),
        "default",
        "precise-prefix-cache-scorer",
    );
    assert_eq!((by["e1"], by["e2"], by["e3"]), (0.0, 1.0, 0.0), "{by:?}");
    let report = s.config_report();
    let lines = report.not_executed_lines().join("\n");
    assert!(
        lines.contains("tokenProcessorConfig")
            && lines.contains("bound to the configured precise-prefix-cache-producer 'precise'"),
        "{lines}"
    );

    let two = yaml.replace(
        "- type: max-score-picker\n",
        "- type: precise-prefix-cache-producer\n  name: other\n  parameters:\n    kvEventsConfig: {discoverPods: false}\n- type: max-score-picker\n",
    );
    let err = Scheduler::from_config_str(&two).unwrap_err().to_string();
    assert!(
        err.contains("cannot choose") && err.contains("precise, other"),
        "{err}"
    );
}
