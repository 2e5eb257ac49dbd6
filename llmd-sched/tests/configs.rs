//! Every example config loads and builds; bad configs fail with errors that
//! name the plugin, the field and the reason.

use llmd_sched::config::PluginStatus;
use llmd_sched::plugins::filters::SaturationDetector;
use llmd_sched::{LoadOptions, ScheduleError, Scheduler};

fn example(name: &str) -> String {
    let path = format!(
        "{}/../testdata/llm-d-configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(text: &str) -> Scheduler {
    Scheduler::from_config_str(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that the loaded configuration has a plugin of `plugin_type`
/// (configured or injected).
fn assert_has_plugin(s: &Scheduler, plugin_type: &str) {
    let report = s.config_report();
    assert!(
        report.plugins.iter().any(|p| p.plugin_type == plugin_type),
        "no {plugin_type}: {:#?}",
        report.plugins
    );
}

fn err(text: &str) -> String {
    match Scheduler::from_config_str(text) {
        Ok(_) => panic!("config unexpectedly loaded:\n{text}"),
        Err(e) => {
            assert_eq!(e.code(), 1001);
            e.to_string()
        }
    }
}

#[test]
fn all_examples_load() {
    let dir = format!("{}/../testdata/llm-d-configs", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            Scheduler::from_config_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert_eq!(n, 18);
}

#[test]
fn example_01_is_the_default_written_out() {
    let s = load(&example("01-default-load-and-prefix.yaml"));
    let p = &s.pipeline().profiles;
    assert_eq!(p.len(), 1);
    let w: Vec<(&str, f64)> = p[0].scorers.iter().map(|s| (&*s.name, s.weight)).collect();
    assert_eq!(
        w,
        vec![
            ("queue-scorer", 2.0),
            ("kv-cache-utilization-scorer", 2.0),
            ("prefix-cache-scorer", 3.0)
        ]
    );
    let r = s.config_report();
    // token-producer is injected because the approximate producer needs tokens.
    assert!(r.plugin("token-producer").is_some_and(|p| p.injected));
    assert!(r.plugin("utilization-detector").is_some_and(|p| p.injected));
    assert!(matches!(
        r.plugin("metrics-data-source").unwrap().status,
        PluginStatus::AcceptedNotExecuted(_)
    ));
    assert!(!r.plugin("metrics-data-source").unwrap().injected);
}

#[test]
fn default_scheduler_matches_llm_d_defaults() {
    let s = Scheduler::default();
    let p = &s.pipeline().profiles;
    assert_eq!(p[0].name, "default");
    let w: Vec<(&str, f64)> = p[0].scorers.iter().map(|s| (&*s.name, s.weight)).collect();
    assert_eq!(
        w,
        vec![
            ("queue-scorer", 2.0),
            ("kv-cache-utilization-scorer", 2.0),
            ("prefix-cache-scorer", 3.0)
        ]
    );
    assert_eq!(&*p[0].picker.name, "max-score-picker");
    let r = s.config_report();
    for injected in [
        "approx-prefix-cache-producer",
        "token-producer",
        "max-score-picker",
        "single-profile-handler",
        "openai-parser",
        "fcfs-ordering-policy",
    ] {
        assert!(
            r.plugin(injected).is_some_and(|p| p.injected),
            "{injected} not injected"
        );
    }
}

#[test]
fn example_02_binds_consumers_to_the_named_precise_producer() {
    let s = load(&example("02-precise-prefix-kv-events.yaml"));
    let names: Vec<&str> = s.pipeline().producers.iter().map(|(n, _)| &**n).collect();
    assert_eq!(
        names,
        vec!["token-producer", "kv-index", "inflight-load-producer"]
    );
    assert_eq!(s.pipeline().kv_backends.len(), 1);
    let r = s.config_report();
    assert!(r
        .plugin("token-producer")
        .unwrap()
        .remark
        .as_deref()
        .unwrap()
        .contains("vllm backend"));
    assert!(matches!(
        r.plugin("endpoint-notification-source").unwrap().status,
        PluginStatus::AcceptedNotExecuted(_)
    ));
    // No approximate producer: every consumer is bound to kv-index.
    assert!(r.plugin("approx-prefix-cache-producer").is_none());
}

/// A disagg handler's decider configured for a stage whose profile the
/// configuration does not define (a typo in `profiles.prefill`) does
/// nothing: reported as not executed, refused when strict.
#[test]
fn a_decider_for_a_missing_profile_is_reported() {
    let good = example("03-pd-disaggregation-prefix-decider.yaml");
    assert!(load(&good)
        .config_report()
        .not_executed_lines()
        .iter()
        .all(|l| !l.contains("deciders.prefill")));
    let typo = good.replace("      prefill: prefill\n", "      prefill: prefil\n");
    assert_ne!(typo, good);
    let lines = load(&typo).config_report().not_executed_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("deciders.prefill") && l.contains("'prefil'")),
        "{lines:?}"
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = Scheduler::from_config_str_with(&typo, strict).unwrap_err();
    assert!(e.to_string().contains("deciders.prefill"), "{e}");
}

/// A scorer defined but referenced by no scheduling profile (and not a
/// fallback picker) does nothing: reported as not executed, refused when
/// strict. A profile without a picker falls back to the first configured
/// one, which therefore runs.
#[test]
fn a_plugin_no_profile_references_is_reported() {
    let text = "apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: load-aware-scorer
  parameters: {threshold: 64}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
";
    let lines = load(text).config_report().not_executed_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("load-aware-scorer") && l.contains("no scheduling profile")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("queue-scorer") && !l.contains("max-score-picker")),
        "{lines:?}"
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = Scheduler::from_config_str_with(text, strict).unwrap_err();
    assert!(e.to_string().contains("load-aware-scorer"), "{e}");
}

/// A profile every request needs that the configuration does not define
/// (a typo in the disagg handler's `profiles.decode`), or a second profile
/// for the data-parallel handler, makes every pick fail, as in llm-d (which
/// loads such a file): reported when it loads, refused by a strict load.
#[test]
fn a_profile_every_request_needs_is_reported_when_missing() {
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let good = example("03-pd-disaggregation-prefix-decider.yaml");
    let typo = good.replace("      decode: decode\n", "      decode: dcode\n");
    assert_ne!(typo, good);
    let s = load(&typo);
    let lines = s.config_report().not_executed_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("profiles.decode") && l.contains("'dcode'")),
        "{lines:?}"
    );
    let e = Scheduler::from_config_str_with(&typo, strict.clone()).unwrap_err();
    assert!(e.to_string().contains("profiles.decode"), "{e}");
    let dp = "apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: data-parallel-profile-handler
- type: queue-scorer
schedulingProfiles:
- name: a
  plugins: [{pluginRef: queue-scorer}]
- name: b
  plugins: [{pluginRef: queue-scorer}]
";
    let lines = load(dp).config_report().not_executed_lines();
    assert!(
        lines.iter().any(|l| l.contains("2 are configured")),
        "{lines:?}"
    );
    assert!(Scheduler::from_config_str_with(dp, strict).is_err());
}

#[test]
fn example_03_builds_two_profiles_with_the_disagg_handler() {
    let s = load(&example("03-pd-disaggregation-prefix-decider.yaml"));
    let names: Vec<&str> = s
        .pipeline()
        .profiles
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, vec!["decode", "prefill"]);
    assert!(s.config_report().plugin("single-profile-handler").is_none());
}

#[test]
fn example_04_alpha_plugins_need_the_experimental_switch() {
    let text = example("04-session-affinity-lora.yaml");
    let s = load(&text);
    assert!(s
        .config_report()
        .warnings
        .iter()
        .any(|w| w.contains("alpha")));
    assert_eq!(
        s.pipeline().profiles[0]
            .scorers
            .iter()
            .map(|s| s.weight)
            .collect::<Vec<_>>(),
        vec![4.0, 2.0, 1.0, 1.0, 0.5]
    );
    let e = Scheduler::from_config_str_with(
        &text,
        LoadOptions {
            allow_experimental_plugins: false,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("sticky-session") && e.to_string().contains("alpha"),
        "{e}"
    );
}

#[test]
fn example_05_legacy_fields_move() {
    let s = load(&example("05-legacy-apiversion.yaml"));
    let r = s.config_report();
    assert!(r.warnings.iter().any(|w| w.contains("deprecated")));
    assert!(r
        .feature_gates
        .contains(&("haPopulateNonLeaderDatastore".to_string(), false)));
    let Some(SaturationDetector::Utilization(d)) = s.pipeline().saturation_detector.clone() else {
        panic!("a utilization detector")
    };
    assert_eq!(
        (
            d.queue_threshold,
            d.kv_threshold,
            d.staleness_ns,
            d.headroom
        ),
        (8.0, 0.9, 500_000_000, 0.1)
    );
    assert!(
        r.plugin("utilization-detector").is_none(),
        "configured detector is used, none injected"
    );
    assert_eq!(
        &*s.pipeline().profiles[0].picker.name,
        "weighted-random-picker"
    );
    assert_eq!(
        &*s.pipeline().profiles[0].filters[0].name,
        "strict-saturation"
    );
}

#[test]
fn example_06_v1_is_converted_and_host_plugins_recorded() {
    let s = load(&example("06-v1-flow-control-affinity.yaml"));
    let r = s.config_report();
    assert_eq!(r.api_version, "llm-d.ai/v1");
    assert!(s.pipeline().flow_control);
    let not_exec: Vec<&str> = r.not_executed().map(|p| p.plugin_type.as_str()).collect();
    for t in [
        "file-discovery",
        "probabilistic-admitter",
        "edf-ordering-policy",
        "static-usage-limit-policy",
        "round-robin-fairness-policy",
    ] {
        assert!(not_exec.contains(&t), "{t} not recorded");
    }
    assert_eq!(&*s.pipeline().profiles[0].picker.name, "max-score-picker");
}

const HEAD: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n";

#[test]
fn unknown_type_lists_known_ones() {
    let e = err(&format!(
        "{HEAD}plugins:\n- name: q\n  type: queue-scorrer\n"
    ));
    assert!(
        e.contains("plugin 'q'")
            && e.contains("queue-scorrer")
            && e.contains("is not registered")
            && e.contains("queue-scorer"),
        "{e}"
    );
}

#[test]
fn unknown_parameter_names_plugin_and_field() {
    let e = err(&format!(
        "{HEAD}plugins:\n- type: load-aware-scorer\n  parameters:\n    treshold: 3\n"
    ));
    assert!(
        e.contains("plugin 'load-aware-scorer'")
            && e.contains("field 'treshold'")
            && e.contains("unknown parameter"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}plugins:\n- type: queue-scorer\n  parameters:\n    x: 1\n"
    ));
    assert!(e.contains("field 'x'"), "{e}");
}

#[test]
fn bad_values_name_field_and_reason() {
    let cases = [
        (
            "prefix-cache-affinity-filter",
            "affinityThreshold: 1.5",
            "affinityThreshold",
            "<= 1",
        ),
        (
            "prefix-cache-scorer",
            "matchLengthWeight: 2",
            "matchLengthWeight",
            "[0, 1]",
        ),
        (
            "active-request-scorer",
            "maxBusyScore: \"high\"",
            "maxBusyScore",
            "expected a number",
        ),
        (
            "prefix-based-pd-decider",
            "nonCachedTokens: -1",
            "nonCachedTokens",
            ">= 0",
        ),
        (
            "utilization-detector",
            "metricsStalenessThreshold: soon",
            "metricsStalenessThreshold",
            "invalid duration",
        ),
        (
            "label-selector-filter",
            "matchExpressions: [{key: a, operator: Near, values: [x]}]",
            "matchExpressions[0].operator",
            "unknown operator",
        ),
        (
            "session-affinity-scorer",
            "strategy: cookie",
            "strategy",
            "unknown strategy",
        ),
        (
            "precise-prefix-cache-producer",
            "tokenProcessorConfig: {blockSizeTokens: 0}",
            "tokenProcessorConfig.blockSizeTokens",
            "must be in 1..=1048576, got 0",
        ),
        // Past the index's bound, the parameter given is named (not the
        // index's own field, nor another parameter).
        (
            "precise-prefix-cache-producer",
            "tokenProcessorConfig: {blockSize: 2097152}",
            "tokenProcessorConfig.blockSize",
            "must be in 1..=1048576, got 2097152",
        ),
        (
            "approx-prefix-cache-producer",
            "blockSizeTokens: 2097152",
            "blockSizeTokens",
            "must be in 1..=1048576",
        ),
        (
            "approx-prefix-cache-producer",
            "blockSize: 2097152",
            "blockSize",
            "must be in 1..=1048576",
        ),
        (
            "precise-prefix-cache-producer",
            "indexerConfig: {tokenizersPoolConfig: {}}",
            "indexerConfig.tokenizersPoolConfig",
            "no longer supported",
        ),
        ("probabilistic-admitter", "power: 0", "power", "> 0"),
        ("file-discovery", "watchFile: true", "path", "required"),
    ];
    for (ty, params, field, reason) in cases {
        let e = err(&format!(
            "{HEAD}plugins:\n- type: {ty}\n  parameters:\n    {params}\n"
        ));
        assert!(e.contains(&format!("plugin '{ty}'")), "{ty}: {e}");
        assert!(e.contains(&format!("field '{field}'")), "{ty}: {e}");
        assert!(e.contains(reason), "{ty}: {e}");
    }
}

#[test]
fn document_errors() {
    assert!(err("apiVersion: llm-d.ai/v2\nkind: EndpointPickerConfig\n")
        .contains("unsupported apiVersion"));
    assert!(err("kind: EndpointPickerConfig\n").contains("apiVersion"));
    assert!(err(&format!("{HEAD}plugin: []\n")).contains("unknown field"));
    assert!(err(&format!("{HEAD}featureGates: [warpDrive]\n"))
        .contains("unknown feature gate 'warpDrive'"));
    let dup = format!("{HEAD}plugins:\n- type: queue-scorer\n- type: queue-scorer\n");
    assert!(err(&dup).contains("duplicate plugin name"));
    let bad_ref = format!("{HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: nope\n");
    let e = err(&bad_ref);
    assert!(
        e.contains("schedulingProfiles[0].plugins[0].pluginRef") && e.contains("'nope'"),
        "{e}"
    );
    let two = format!("{HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: a\n  plugins: [{{pluginRef: queue-scorer}}]\n- name: b\n  plugins: [{{pluginRef: queue-scorer}}]\n");
    assert!(err(&two).contains("no profile handler configured"));
    let v1_field = "apiVersion: llm-d.ai/v1\nkind: EndpointPickerConfig\ndataLayer:\n  peerDiscovery: {pluginRef: x}\n";
    assert!(err(v1_field).contains("dataLayer.peerDiscovery"));
    let v1alpha_field = format!("{HEAD}dataLayer:\n  crossReplica: {{syncInterval: 1s}}\n");
    assert!(err(&v1alpha_field).contains("requires apiVersion llm-d.ai/v1"));
    assert!(err(&format!("{HEAD}flowControl:\n  maxBytes: lots\n")).contains("invalid quantity"));
}

#[test]
fn token_load_scorer_needs_an_explicit_inflight_producer() {
    let e = err(&format!("{HEAD}plugins:\n- type: token-load-scorer\n"));
    assert!(
        e.contains("token-load-scorer")
            && e.contains("UncachedRequestTokens")
            && e.contains("inflight-load-producer"),
        "{e}"
    );
}

#[test]
fn consumer_bound_to_missing_producer_fails() {
    let e = err(&format!("{HEAD}plugins:\n- type: prefix-cache-scorer\n  parameters:\n    prefixMatchInfoProducerName: ghost\n"));
    assert!(e.contains("ghost"), "{e}");
}

#[test]
fn json_documents_load_too() {
    let json = r#"{"apiVersion":"llm-d.ai/v1alpha1","kind":"EndpointPickerConfig",
        "plugins":[{"type":"queue-scorer"},{"type":"random-picker","parameters":{"maxNumOfEndpoints":2}}]}"#;
    let s = load(json);
    let p = &s.pipeline().profiles[0];
    assert_eq!(p.name, "default");
    assert_eq!(&*p.picker.name, "random-picker");
}

#[test]
fn pd_config_errors() {
    let base = "- type: always-disagg-pd-decider\n- type: decode-filter\nschedulingProfiles:\n- name: decode\n  plugins: [{pluginRef: decode-filter}]\n";
    let e = err(&format!("{HEAD}plugins:\n- type: disagg-profile-handler\n  parameters:\n    stageOrder: prefill-first\n    deciders: {{prefill: always-disagg-pd-decider}}\n{base}"));
    assert!(e.contains("prefill-first"), "{e}");
    let e = err(&format!("{HEAD}plugins:\n- type: disagg-profile-handler\n  parameters:\n    deciders: {{prefill: missing}}\n{base}"));
    assert!(
        e.contains("deciders.prefill") && e.contains("missing"),
        "{e}"
    );
    let e = err(&format!("{HEAD}plugins:\n- type: disagg-profile-handler\n  parameters:\n    deciders: {{prefill: always-disagg-pd-decider}}\n    decodeProfile: d\n{base}"));
    assert!(e.contains("cannot be mixed"), "{e}");
    assert!(matches!(
        Scheduler::from_config_str("{"),
        Err(ScheduleError::Config(_))
    ));
}

#[test]
fn settings_accepted_but_not_executed_are_reported_and_strict_refuses_them() {
    let text = example("02-precise-prefix-kv-events.yaml");
    let s = load(&text);
    let report = s.config_report();
    let kv = report.plugin("kv-index").unwrap();
    assert_eq!(kv.status, PluginStatus::Executed);
    let settings: Vec<&str> = kv
        .settings_not_executed
        .iter()
        .map(|x| x.setting.as_str())
        .collect();
    for want in [
        "tokenProcessorConfig.hashSeed",
        "indexerConfig.kvBlockIndexConfig.enableMetrics",
        "indexerConfig.kvBlockIndexConfig.inMemoryConfig.podCacheSize",
        "kvEventsConfig.engineType",
        "kvEventsConfig.topicFilter",
        "kvEventsConfig.concurrency",
        "kvEventsConfig.discoverPods",
        "kvEventsConfig.podDiscoveryConfig",
    ] {
        assert!(settings.contains(&want), "{want} missing from {settings:?}");
    }
    let tok = report.plugin("token-producer").unwrap();
    let tok_settings: Vec<&str> = tok
        .settings_not_executed
        .iter()
        .map(|x| x.setting.as_str())
        .collect();
    assert_eq!(tok_settings, ["modelName", "vllm"]);
    let lines = report.not_executed_lines();
    // The notification source plugin, the token producer's two settings and
    // the precise producer's eight.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("endpoint-notification-source")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 1 + 2 + 8, "{lines:#?}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["settings_not_executed"]
            .as_array()
            .is_some_and(|a| a.len() == 8)));
    // A precise producer without kvEventsConfig still says llm-d would subscribe.
    let bare = format!(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n{}",
        "- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\n"
    );
    let s = load(&bare);
    assert_eq!(
        s.config_report()
            .plugin("precise-prefix-cache-producer")
            .unwrap()
            .settings_not_executed[0]
            .setting,
        "kvEventsConfig"
    );
    // Strict: refused, naming what would not run; the default config loads.
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = Scheduler::from_config_str_with(&text, strict.clone()).unwrap_err();
    assert!(matches!(e, ScheduleError::Config(_)), "{e}");
    assert!(e.to_string().contains("kvEventsConfig.discoverPods"), "{e}");
    // llm-d's default config names a metrics data source: the host scrapes.
    let e = Scheduler::from_config_str_with("", strict.clone()).unwrap_err();
    assert!(e.to_string().contains("metrics-data-source"), "{e}");
    // A pipeline the library runs whole loads strictly.
    let runs = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: max-score-picker\n";
    let s = Scheduler::from_config_str_with(runs, strict).unwrap();
    assert!(s.config_report().not_executed_lines().is_empty());
}

/// `.nan` / `.inf` in plugin parameters would reach them as null, that is
/// as the default: refused anywhere in the document, naming the place (llm-d
/// refuses such files too).
#[test]
fn non_finite_parameters_are_refused_not_taken_as_defaults() {
    for v in [".nan", ".inf", "-.Inf"] {
        let e = err(&format!(
            "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: prefix-cache-affinity-filter\n  parameters: {{maxTTFTPenaltyMs: {v}}}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\n"
        ));
        assert!(
            e.contains("plugins[1].parameters.maxTTFTPenaltyMs") && e.contains("finite"),
            "{v}: {e}"
        );
    }
}

/// A scorer weight that is not a finite number would make every total NaN
/// (the max-score picker then always takes the first candidate): refused,
/// naming the field.
#[test]
fn non_finite_scorer_weights_are_refused() {
    for w in [".nan", ".inf", "-.inf"] {
        let e = err(&format!(
            "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n    weight: {w}\n  - pluginRef: max-score-picker\n"
        ));
        assert!(
            e.contains("schedulingProfiles[0].plugins[0].weight") && e.contains("finite"),
            "{w}: {e}"
        );
    }
}

/// Consumers read the in-flight producer their `inFlightLoadProducerName`
/// names: a producer configured under another name is used (no default one
/// injected beside it), and a second in-flight producer is refused.
#[test]
fn consumers_read_the_inflight_producer_they_name() {
    let named = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- name: load\n  type: inflight-load-producer\n  parameters: {addEstimatedOutputTokens: true}\n- type: token-load-scorer\n  parameters: {inFlightLoadProducerName: load}\n- type: active-request-scorer\n  parameters: {inFlightLoadProducerName: load}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: token-load-scorer\n  - pluginRef: active-request-scorer\n  - pluginRef: max-score-picker\n";
    let s = load(named);
    let inflight: Vec<_> = s
        .config_report()
        .plugins
        .iter()
        .filter(|p| p.plugin_type == "inflight-load-producer")
        .map(|p| (p.name.clone(), p.injected))
        .collect();
    assert_eq!(inflight, vec![("load".to_string(), false)]);
    // A name nobody configured is an error, not a default.
    let e = err(&named.replace(
        "inFlightLoadProducerName: load}\n- type: active",
        "inFlightLoadProducerName: nope}\n- type: active",
    ));
    assert!(e.contains("nope"), "{e}");
    let two = named.replace(
        "- type: token-load-scorer",
        "- name: load2\n  type: inflight-load-producer\n- type: token-load-scorer",
    );
    let e = err(&two);
    assert!(e.contains("second inflight-load-producer"), "{e}");
}

/// Settings outside any plugin that the library does not execute are in
/// the report and refused by a strict load; flow-control settings without
/// the gate are ignored with a warning, as llm-d ignores them.
#[test]
fn document_settings_not_executed_are_reported() {
    let base = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\nrequestHandler:\n  propagatePriority: true\nflowControl:\n  maxRequests: 100\n";
    let gated = format!("{base}featureGates: [flowControl]\n");
    let s = load(&gated);
    let lines = s.config_report().not_executed_lines();
    for k in [
        "requestHandler.propagatePriority",
        "flowControl.maxRequests",
    ] {
        assert!(lines.iter().any(|l| l.contains(k)), "{k}: {lines:?}");
    }
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = match Scheduler::from_config_str_with(&gated, strict) {
        Ok(_) => panic!("a strict load refuses"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("propagatePriority") && e.contains("maxRequests"),
        "{e}"
    );
    let s = load(base);
    let r = s.config_report();
    assert!(!r
        .not_executed_lines()
        .iter()
        .any(|l| l.contains("maxRequests")));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("flowControl.maxRequests is ignored")));
}

/// Parameters read and not executed are in the report, whichever plugin
/// takes them: the session strategy block the strategy does not use (still
/// checked), attribute sources, deprecated parameters llm-d ignores too,
/// cross-replica sync, and a testing filter's parameters.
#[test]
fn parameters_read_and_not_executed_are_reported() {
    let y = format!(
        "{HEAD}plugins:\n\
         - type: session-affinity-scorer\n  parameters:\n    sessionIdConfig: {{sources: [{{attribute: conv, producer: p}}], evictionTtlSeconds: 60}}\n\
         - type: inflight-load-producer\n  parameters: {{syncCrossReplicaState: true}}\n\
         - type: active-request-scorer\n  parameters: {{requestTimeout: 2m}}\n\
         - type: no-hit-lru-scorer\n  parameters: {{prefixPluginType: prefix-cache-scorer}}\n\
         - type: header-based-testing-filter\n  parameters: {{headerName: x-test}}\n\
         - type: max-score-picker\n\
         schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: header-based-testing-filter\n  - pluginRef: session-affinity-scorer\n  - pluginRef: active-request-scorer\n  - pluginRef: no-hit-lru-scorer\n  - pluginRef: max-score-picker\n"
    );
    let s = load(&y);
    let lines = s.config_report().not_executed_lines();
    for k in [
        "'sessionIdConfig'",
        "syncCrossReplicaState",
        "requestTimeout",
        "prefixPluginType",
        "headerName",
    ] {
        assert!(lines.iter().any(|l| l.contains(k)), "{k}: {lines:#?}");
    }
    // The session_id strategy: the header block is the unused one, and an
    // attribute source says what it reads.
    let y = format!(
        "{HEAD}plugins:\n- type: session-affinity-scorer\n  parameters:\n    strategy: session_id\n    encodedEndpointHeaderConfig: {{header: x-ep}}\n    sessionIdConfig: {{sources: [{{attribute: conv}}]}}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: session-affinity-scorer\n  - pluginRef: max-score-picker\n"
    );
    let lines = load(&y).config_report().not_executed_lines();
    for k in ["'encodedEndpointHeaderConfig'", "sources[0].attribute"] {
        assert!(lines.iter().any(|l| l.contains(k)), "{k}: {lines:#?}");
    }
    // The unused block is still checked: a mistyped key is an error.
    let bad = format!(
        "{HEAD}plugins:\n- type: session-affinity-scorer\n  parameters:\n    sessionIdConfig: {{evictionTtlSecond: 60}}\n"
    );
    assert!(err(&bad).contains("evictionTtlSecond"), "{}", err(&bad));
}

/// One latency producer per config, and consumers naming it must name a
/// configured one: otherwise the last producer's predictions would win.
#[test]
fn latency_producers_are_one_and_named_consumers_must_find_it() {
    let two = format!(
        "{HEAD}plugins:\n- {{name: plp-a, type: predicted-latency-producer}}\n- {{name: plp-b, type: predicted-latency-producer}}\n"
    );
    let e = err(&two);
    assert!(e.contains("second predicted-latency-producer"), "{e}");
    let misnamed = format!(
        "{HEAD}plugins:\n- {{name: plp-a, type: predicted-latency-producer}}\n- type: latency-scorer\n  parameters: {{latencyPredictionInfoProducerName: plp-typo}}\n"
    );
    let e = err(&misnamed);
    assert!(
        e.contains("plp-typo") && e.contains("not configured"),
        "{e}"
    );
    // Without a producer, or with an empty name, llm-d's default producer
    // is created for the SLO plugins, as llm-d creates it.
    for name in ["", ", latencyPredictionInfoProducerName: \"\""] {
        let bare = format!(
            "{HEAD}plugins:\n- type: slo-headroom-tier-filter\n  parameters: {{epsilonExploreNeg: 0.01{name}}}\n- type: latency-scorer\n- type: latency-slo-admitter\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: slo-headroom-tier-filter\n  - pluginRef: latency-scorer\n  - pluginRef: max-score-picker\n"
        );
        assert_has_plugin(&load(&bare), "predicted-latency-producer");
    }
    let named = format!(
        "{HEAD}plugins:\n- {{name: plp-a, type: predicted-latency-producer}}\n- type: latency-scorer\n  parameters: {{latencyPredictionInfoProducerName: plp-a}}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: latency-scorer\n  - pluginRef: max-score-picker\n"
    );
    load(&named);
}

/// The prefix-based P/D decider reads the approximate producer's matches:
/// a P/D config whose profiles score by load alone still gets that producer.
#[test]
fn the_prefix_pd_decider_brings_its_prefix_producer() {
    let y = format!(
        "{HEAD}plugins:\n- type: prefix-based-pd-decider\n  parameters: {{nonCachedTokens: 8}}\n- type: disagg-profile-handler\n  parameters: {{deciders: {{prefill: prefix-based-pd-decider}}}}\n- type: queue-scorer\n- type: max-score-picker\n- type: prefill-filter\n- type: decode-filter\nschedulingProfiles:\n- name: prefill\n  plugins:\n  - pluginRef: prefill-filter\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\n- name: decode\n  plugins:\n  - pluginRef: decode-filter\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\n"
    );
    assert_has_plugin(&load(&y), "approx-prefix-cache-producer");
}
