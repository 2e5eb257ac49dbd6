"""llmd.Scheduler driven end to end: configs, endpoints, metrics, KV events,
picks, P/D, lifecycle and errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import kv_events
import pytest
from conftest import CONFIGS_DIR, vectors

import llmd

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
PRECISE = CONFIGS_DIR / "02-precise-prefix-kv-events.yaml"

VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
"""


def fleet(s: llmd.Scheduler, n: int = 3, **labels: str) -> list[str]:
    names = []
    for i in range(n):
        name = f"pod-{i}"
        s.add_endpoint(name, f"10.0.0.{i}:8000", model=MODEL, labels=labels or None)
        s.update_metrics(name, kv_cache_usage=0.1)
        names.append(name)
    return names


def test_encoder_helper_matches_vllm_bytes() -> None:
    case = next(c for c in vectors()["event_cases"] if c["id"] == "0.10.2-0.13/stored_root")
    hashes = [int(h["int"]) for h in case["expected"]["events"][0]["block_hashes"]]
    payload = kv_events.batch([kv_events.stored(hashes, list(range(1, 33)))])
    assert payload.hex() == case["payload_hex"]


@pytest.mark.parametrize("path", sorted(CONFIGS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_llm_d_config_loads_and_picks(path: Path) -> None:
    # A DisaggregatedSet rollout screener serves only revisions with every
    # role present among the pods its scope selects: label the pods so.
    scope = re.search(r'labelSelector: "disaggregatedset\.x-k8s\.io/name=([\w-]+)"', path.read_text())
    for s in (llmd.Scheduler.from_file(path, seed=1), llmd.Scheduler.from_yaml(path.read_text(), seed=1)):
        for i, role in enumerate(("prefill", "decode", "decode")):
            labels = {"llm-d.ai/role": role, "app": "vllm-llama3", "example.com/gpu-class": "h100"}
            if scope:
                labels |= {
                    "disaggregatedset.x-k8s.io/name": scope.group(1),
                    "disaggregatedset.x-k8s.io/revision": "rev-a",
                    "disaggregatedset.x-k8s.io/role": role,
                }
            s.add_endpoint(f"pod-{i}", f"10.0.0.{i}:8000", model=MODEL, labels=labels)
            s.update_metrics(f"pod-{i}", kv_cache_usage=0.2)
        d = s.pick(model=MODEL, tokens=list(range(64)), headers={"x-session-id": "abc"})
        assert d.target is not None and d.target["name"] in s.endpoints()
        addresses = [t["address"] for t in [d.target, *d.fallbacks]]
        assert d.headers["x-gateway-destination-endpoint"] == ",".join(addresses)


def test_default_and_constructor_agree() -> None:
    for s in (llmd.Scheduler(), llmd.Scheduler.default(seed=3), llmd.Scheduler(None, seed=3)):
        fleet(s, 2)
        assert s.pick(model=MODEL, prompt="hello").target is not None
        assert repr(s) == "Scheduler(endpoints=2)"


def test_precise_prefix_routing_end_to_end() -> None:
    s = llmd.Scheduler.from_file(PRECISE, seed=7)
    fleet(s, 3)
    prompt = list(range(1000, 1000 + 160))
    result = s.ingest_kv_events("pod-1", kv_events.stored_for(prompt, key_base=1 << 40), seq=0)
    assert result == {
        "stored": 10,
        "removed": 0,
        "cleared": 0,
        "skipped": 0,
        "skipped_unknown_parent": 0,
        "skipped_unknown_medium": 0,
        "skipped_stale": 0,
        "parity_mismatches": 0,
        "superseded": 0,
        "seq_status": "first",
        "missing": 0,
    }

    d = s.pick(model=MODEL, tokens=prompt + [1, 2, 3], request_id="r-1")
    assert d.request_id == "r-1"
    assert d.target == {"name": "pod-1", "address": "10.0.0.1:8000"}
    assert d.prefill_target is None
    why = d.explain()
    assert why["request_id"] == "r-1" and why["candidates"] == ["pod-0", "pod-1", "pod-2"]
    (profile,) = why["profiles"]
    prefix = next(sc for sc in profile["scorers"] if sc["name"] == "prefix-cache-scorer")
    assert prefix["raw"][1] > 0.5 and prefix["raw"][0] == prefix["raw"][2] == 0.0
    assert profile["picked"] == ["pod-1"]
    assert '"prefix-cache-scorer"' in d.explain_json()

    # Lifecycle with the engine's cached-token count.
    assert s.open_requests == 1
    assert s.endpoint_state("pod-1")["inflight_requests"] == 1
    assert s.on_first_token("r-1") and s.on_tokens("r-1", 9)
    summary = s.on_complete("r-1", cached_tokens=160)
    assert summary is not None
    assert (summary["id"], summary["target"], summary["cached_tokens"]) == ("r-1", "pod-1", 160)
    assert summary["output_tokens"] == 10 and summary["prompt_tokens"] == 163
    assert summary["first_token_at_ns"] is not None and summary["error"] is None
    assert s.open_requests == 0 and s.on_complete("r-1") is None
    metrics = s.render_metrics()
    assert 'llmd_inference_requests_total{model="meta-llama/Llama-3.1-8B-Instruct"' in metrics
    assert 'llmd_kvcache_cached_tokens_total{model="meta-llama/Llama-3.1-8B-Instruct",pool="default",source="reported"} 160' in metrics
    assert not s.on_first_token("r-unknown")

    # Evicting the blocks sends the next request elsewhere or anywhere.
    gone = kv_events.batch([kv_events.removed([(1 << 40) + i for i in range(10)])])
    assert s.ingest_kv_events("pod-1", gone, seq=1)["removed"] == 10
    d2 = s.pick(model=MODEL, tokens=prompt)
    prefix2 = next(sc for sc in d2.explain()["profiles"][0]["scorers"] if sc["name"] == "prefix-cache-scorer")
    assert prefix2["raw"] == [0.0, 0.0, 0.0]
    s.on_error(d2.request_id, "cancelled")


def test_sequence_numbers() -> None:
    s = llmd.Scheduler.from_file(PRECISE, seed=7)
    fleet(s, 1)
    p = kv_events.stored_for(list(range(32)), key_base=5)
    assert s.ingest_kv_events("pod-0", p)["seq_status"] is None
    assert s.ingest_kv_events("pod-0", p, seq=4)["seq_status"] == "first"
    dup = s.ingest_kv_events("pod-0", p, seq=4)
    assert dup["seq_status"] == "duplicate" and dup["stored"] == 0
    gap = s.ingest_kv_events("pod-0", p, seq=8)
    assert (gap["seq_status"], gap["missing"]) == ("gap", 3)
    assert s.ingest_kv_events("pod-0", p, seq=0)["seq_status"] == "restart"


def test_metrics_text_and_load_aware_choice() -> None:
    s = llmd.Scheduler.default(seed=1)
    fleet(s, 2)
    s.update_metrics_text("pod-0", VLLM_METRICS)
    m = s.endpoint_state("pod-0")["metrics"]
    assert (m["waiting_queue_size"], m["running_requests_size"], m["kv_cache_usage"]) == (7, 3, 0.25)
    s.update_metrics("pod-1", waiting_queue_size=0, kv_cache_usage=0.05)
    for i in range(5):
        assert s.pick(model=MODEL, prompt=f"question {i}").target == {"name": "pod-1", "address": "10.0.0.1:8000"}


def test_pd_disaggregation_sets_prefill_target() -> None:
    s = llmd.Scheduler.from_file(CONFIGS_DIR / "03-pd-disaggregation-prefix-decider.yaml", seed=1)
    s.add_endpoint("prefill-0", "10.0.1.0:8000", model=MODEL, labels={"llm-d.ai/role": "prefill"})
    s.add_endpoint("decode-0", "10.0.2.0:8000", model=MODEL, labels={"llm-d.ai/role": "decode"})
    for name in s.endpoints():
        s.update_metrics(name, kv_cache_usage=0.1)
    d = s.pick(model=MODEL, tokens=list(range(4096)))
    assert d.target is not None and d.target["name"] == "decode-0"
    assert d.prefill_target == {"name": "prefill-0", "address": "10.0.1.0:8000"}
    assert d.headers["x-prefiller-host-port"] == "10.0.1.0:8000"
    short = s.pick(model=MODEL, tokens=list(range(8)))
    assert short.prefill_target is None


def test_endpoint_management() -> None:
    s = llmd.Scheduler.default()
    fleet(s, 2)
    s.update_metrics("pod-0", waiting_queue_size=4, kv_cache_usage=0.5)
    s.update_endpoint("pod-0", "10.9.9.9:8000", model=MODEL)
    state = s.endpoint_state("pod-0")
    assert state["address"] == "10.9.9.9:8000"
    assert state["metrics"]["waiting_queue_size"] == 4  # kept across the update
    s.remove_endpoint("pod-0")
    assert s.endpoints() == ["pod-1"]
    with pytest.raises(llmd.UnknownEndpointError):
        s.update_endpoint("pod-0", "10.0.0.0:8000")
    # Duplicate names and addresses that are not host:port are refused.
    with pytest.raises(llmd.InvalidArgumentError, match="already registered"):
        s.add_endpoint("pod-1", "10.0.0.1:8000")
    for bad in ("10.0.0.1", "10.0.0.1:0", "::1:8000", "h:99999", "http://h:80"):
        with pytest.raises(llmd.InvalidArgumentError, match="address"):
            s.add_endpoint("pod-new", bad)
    s.add_endpoint("pod-v6", "[::1]:8000")
    # A pick needs a prompt.
    with pytest.raises(llmd.InvalidArgumentError, match="no prompt"):
        s.pick(model=MODEL)
    with pytest.raises(llmd.InvalidArgumentError, match="no prompt"):
        s.pick(model=MODEL, prompt="")
    with pytest.raises(llmd.InvalidArgumentError, match="no prompt"):
        s.pick(model=MODEL, tokens=[])


def test_errors() -> None:
    s = llmd.Scheduler.default()
    with pytest.raises(llmd.NoEndpointsError) as no_ep:
        s.pick(model=MODEL, prompt="hi")
    assert isinstance(no_ep.value, LookupError)
    assert (no_ep.value.code, no_ep.value.detail) == ("no_endpoints", 503)
    assert no_ep.value.dropped_reason == "rejected-no-endpoints"
    with pytest.raises(llmd.UnknownEndpointError) as unknown:
        s.update_metrics("ghost", waiting_queue_size=1)
    assert isinstance(unknown.value, KeyError) and "ghost" in str(unknown.value)
    with pytest.raises(llmd.UnknownEndpointError):
        s.remove_endpoint("ghost")
    fleet(s, 1)
    with pytest.raises(llmd.InvalidArgumentError):
        s.pick(model=MODEL, prompt="x", tokens=[1])
    with pytest.raises(llmd.InvalidArgumentError):
        s.on_error("r", "exploded")  # type: ignore[arg-type]
    # An unknown kind still closes the request (as "other"), then raises.
    s.pick(model=MODEL, prompt="x", request_id="failing")
    open_before = s.open_requests
    with pytest.raises(llmd.InvalidArgumentError):
        s.on_error("failing", "exploded")  # type: ignore[arg-type]
    assert s.open_requests == open_before - 1
    with pytest.raises(llmd.InvalidArgumentError):
        s.update_metrics("pod-0", kv_cache_usage=1.5)
    with pytest.raises(llmd.InvalidArgumentError):
        s.update_metrics_text("pod-0", "vllm:num_requests_waiting{ not metrics")
    with pytest.raises(llmd.EventDecodeError) as bad:
        s.ingest_kv_events("pod-0", b"")
    assert (bad.value.code, bad.value.detail) == ("kv_events", 1004)
    assert "pod-0" in str(bad.value)
    for bad_ids in ([1 << 40], [5, -1], [1 << 32]):
        with pytest.raises(llmd.InvalidArgumentError, match="out of range") as info:
            s.pick(model=MODEL, tokens=bad_ids)
        assert isinstance(info.value, ValueError) and not isinstance(info.value, OverflowError)

    # Integers that are not `int` (numpy's, anything with __index__) are
    # range-checked too, never truncated to 32 bits.
    class Index:
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    for bad_id in ((1 << 32) + 5, -1, 1 << 70):
        with pytest.raises(llmd.InvalidArgumentError, match="out of range"):
            s.pick(model=MODEL, tokens=[Index(1), Index(bad_id)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        s.pick(model=MODEL, tokens=[1.5])  # type: ignore[list-item]
    s.pick(model=MODEL, tokens=[Index(1), Index(2)], request_id="idx")  # type: ignore[list-item]
    s.on_complete("idx", cached_tokens=0)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: no-such-plugin\n",
        "plugins: [",
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: queue-scorer\n  parameters:\n    bogus: 1\n",
    ],
)
def test_config_errors(text: str) -> None:
    with pytest.raises(llmd.ConfigError) as info:
        llmd.Scheduler.from_yaml(text)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_on_complete_takes_the_engines_openai_usage() -> None:
    s = llmd.Scheduler.default(seed=1)
    fleet(s, 2)
    d = s.pick(model=MODEL, tokens=list(range(64)), request_id="whole")
    assert d.request_id == "whole"
    usage = {"prompt_tokens": 64, "completion_tokens": 50, "total_tokens": 114, "prompt_tokens_details": {"cached_tokens": 32}}
    summary = s.on_complete("whole", usage=usage)
    assert summary is not None
    assert (summary["output_tokens"], summary["cached_tokens"], summary["first_token_at_ns"]) == (50, 32, None)
    assert 'llmd_inference_output_tokens_sum{model="meta-llama/Llama-3.1-8B-Instruct"' in s.render_metrics()
    # An explicit cached count wins over the usage's.
    s.pick(model=MODEL, tokens=list(range(64)), request_id="r2")
    summary = s.on_complete("r2", 7, usage=usage)
    assert summary is not None and summary["cached_tokens"] == 7
    s.pick(model=MODEL, tokens=list(range(64)), request_id="r3")
    with pytest.raises(llmd.InvalidArgumentError, match="usage"):
        s.on_complete("r3", usage={"prompt_tokens": object()})
    assert s.open_requests == 0  # completed all the same
    # Counts out of range, in the usage or given directly: refused as C
    # refuses them, after completing the request with the rest.
    for i, (cached, bad_usage) in enumerate(
        [
            (None, {"completion_tokens": -5}),
            (None, {"prompt_tokens": 1 << 32}),
            (None, {"prompt_tokens_details": {"cached_tokens": 1.5}}),
            (-2, None),
            (1 << 40, None),
            ("7", None),
        ]
    ):
        rid = f"bad{i}"
        s.pick(model=MODEL, tokens=list(range(64)), request_id=rid)
        with pytest.raises(llmd.InvalidArgumentError, match="token count"):
            s.on_complete(rid, cached, usage=bad_usage)  # type: ignore[arg-type]
        assert s.open_requests == 0
    # -1 is "not reported", as in C and Go.
    s.pick(model=MODEL, tokens=list(range(64)), request_id="minus-one")
    done = s.on_complete("minus-one", -1)
    assert done is not None and done["cached_tokens"] is None
    # Unknown ids: None, as in every lifecycle call.
    assert s.on_complete("nope", usage=usage) is None


def test_an_unreadable_config_file_is_an_io_error(tmp_path: Path) -> None:
    # As LLMD_STATUS_IO in C and ErrIO in Go; an OSError for Python callers.
    with pytest.raises(llmd.IoError, match="cannot read") as info:
        llmd.Scheduler.from_file(tmp_path / "absent.yaml")
    assert isinstance(info.value, OSError) and info.value.code == "io"


def test_a_path_given_as_config_text_says_to_use_from_file() -> None:
    with pytest.raises(llmd.ConfigError, match=r"use Scheduler\.from_file"):
        llmd.Scheduler(str(PRECISE))
    with pytest.raises(llmd.ConfigError, match=r"use Scheduler\.from_file"):
        llmd.Scheduler("my-config.yaml")


def test_config_report_warnings_and_strict() -> None:
    with pytest.warns(llmd.NotExecutedWarning) as caught:
        s = llmd.Scheduler.from_file(PRECISE)
    messages = [str(w.message) for w in caught]
    assert all(issubclass(w.category, UserWarning) for w in caught)
    # Attributed to the line that loaded the config (a filter by module works).
    assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]
    assert any("kvEventsConfig.discoverPods" in m for m in messages), messages
    report = s.report
    assert report["not_executed"] == messages
    # The stub's TypedDict names every key the runtime gives.
    assert set(report) == set(llmd.ConfigReport.__annotations__)
    kv = next(p for p in report["plugins"] if p["name"] == "kv-index")
    assert kv["status"] == {"status": "executed"}
    settings = {x["setting"] for x in kv["settings_not_executed"]}
    assert {"kvEventsConfig.discoverPods", "kvEventsConfig.podDiscoveryConfig"} <= settings
    assert report["api_version"] == "llm-d.ai/v1alpha1"
    # The same through from_yaml and the constructor.
    with pytest.warns(llmd.NotExecutedWarning):
        llmd.Scheduler(PRECISE.read_text())
    # Strict refuses, naming the settings.
    with pytest.raises(llmd.ConfigError, match="kvEventsConfig.discoverPods"):
        llmd.Scheduler.from_file(PRECISE, strict=True)
    with pytest.raises(llmd.ConfigError, match="strict load"):
        llmd.Scheduler.from_yaml(PRECISE.read_text(), strict=True)
    # The built-in default pipeline warns about nothing the caller wrote.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = llmd.Scheduler.default()
    assert d.report["not_executed"] == [] or all("metrics" in m for m in d.report["not_executed"])


def test_arrival_time_starts_the_router_queue_time() -> None:
    import time

    s = llmd.Scheduler.default()
    fleet(s, 1)
    s.pick(model=MODEL, prompt="hello", request_id="late", arrived_at=time.time() - 2.0)
    s.on_first_token("late")
    s.on_complete("late", cached_tokens=0)
    queued = [
        float(line.rsplit(" ", 1)[1])
        for line in s.render_metrics().splitlines()
        if line.startswith("llmd_router_queue_time_seconds_sum")
    ]
    assert queued and 2.0 <= sum(queued) < 60.0
    with pytest.raises(llmd.InvalidArgumentError):
        s.pick(model=MODEL, prompt="x", arrived_at=float("nan"))


def test_abandoned_requests_are_expired() -> None:
    import time

    s = llmd.Scheduler.default()
    fleet(s, 1)
    s.pick(model=MODEL, prompt="x", request_id="abandoned")
    time.sleep(0.01)
    assert s.expire_requests(3600.0) == 0
    assert s.expire_requests(1e300) == 0
    assert s.expire_requests(0.0) == 1
    assert s.open_requests == 0
    assert s.on_complete("abandoned") is None
    assert 'outcome="expired"' in s.render_metrics()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(llmd.InvalidArgumentError):
            s.expire_requests(bad)


def test_max_open_requests_bounds_the_open_requests(tmp_path: Path) -> None:
    assert llmd.Scheduler.default().open_requests_limit == 2**20
    for bad in (0, -1, 2**64):
        with pytest.raises(llmd.InvalidArgumentError):
            llmd.Scheduler(max_open_requests=bad)
    path = tmp_path / "default.yaml"
    path.write_text("apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n")
    assert llmd.Scheduler.from_file(path, max_open_requests=7).open_requests_limit == 7
    assert llmd.Scheduler.from_yaml(path.read_text(), max_open_requests=8).open_requests_limit == 8
    s = llmd.Scheduler(max_open_requests=4, seed=1)
    assert s.open_requests_limit == 4
    fleet(s, 2)
    for i in range(1, 6):
        s.pick(model=MODEL, prompt="x", request_id=f"o{i}")
    assert s.open_requests == 4
    assert "llmd_open_requests_expired_at_limit_total 1\n" in s.render_metrics()
    assert s.on_complete("o1") is None
    assert s.on_complete("o5") is not None


def test_a_fallback_target_reports_the_endpoint_that_served() -> None:
    s = llmd.Scheduler(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: inflight-load-producer\n- type: active-request-scorer\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: active-request-scorer\n"
        "  - pluginRef: max-score-picker\n"
    )
    names = fleet(s, 2)
    d = s.pick(model=MODEL, prompt="x" * 200, request_id="fb")
    assert d.target is not None
    first = d.target["name"]
    other = next(n for n in names if n != first)
    assert s.endpoint_state(first)["inflight_requests"] == 1
    with pytest.raises(llmd.UnknownEndpointError):
        s.on_served_by("fb", "pod-z")
    assert s.on_served_by("nope", other) is False
    assert s.on_served_by("fb", other) is True
    assert [s.endpoint_state(n)["inflight_requests"] for n in (first, other)] == [0, 1]
    text = s.render_metrics()
    assert f'llmd_router_inflight_requests{{endpoint="{other}"' in text
    summary = s.on_complete("fb")
    assert summary is not None and summary["target"] == other
    assert all(s.endpoint_state(n)["inflight_requests"] == 0 for n in names)


def test_objectives_must_be_positive_and_finite() -> None:
    s = llmd.Scheduler.default()
    fleet(s, 1)
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(llmd.InvalidArgumentError):
            s.pick(model=MODEL, prompt="x", ttft_slo_ms=bad)
        with pytest.raises(llmd.InvalidArgumentError):
            s.pick(model=MODEL, prompt="x", tpot_slo_ms=bad)
    # 0 is none; a client header of "inf" is no objective, not a failure.
    s.pick(model=MODEL, prompt="x", request_id="zero", ttft_slo_ms=0.0)
    s.on_complete("zero", cached_tokens=0)
    s.pick(
        model=MODEL,
        prompt="x",
        request_id="hdr",
        headers={"x-llm-d-slo-ttft-ms": "inf", "x-llm-d-slo-tpot-ms": "1e400"},
    )
    s.on_first_token("hdr")
    s.on_complete("hdr", cached_tokens=0)
    assert 'llmd_router_inflight_requests{endpoint="' not in s.render_metrics() or all(
        line.endswith(" 0")
        for line in s.render_metrics().splitlines()
        if line.startswith("llmd_router_inflight_requests{")
    )


def test_mapping_arguments_take_any_mapping() -> None:
    from types import MappingProxyType

    s = llmd.Scheduler.default()
    s.add_endpoint("m0", "10.0.0.1:8000", labels=MappingProxyType({"tier": "gold"}))
    d = s.pick(model=MODEL, prompt="x", request_id="mp", headers=MappingProxyType({"x-llm-d-slo-ttft-ms": "250"}))
    assert d.request_id == "mp"
    summary = s.on_complete("mp", usage=MappingProxyType({"completion_tokens": 3}))
    assert summary is not None and summary["output_tokens"] == 3
    with pytest.raises(llmd.InvalidArgumentError, match="labels"):
        s.add_endpoint("m1", "10.0.0.2:8000", labels={"tier": 1})  # type: ignore[dict-item]
    # An OpenAI body, and the chat arguments of the tokenizer, too.
    body = MappingProxyType({"model": MODEL, "prompt": "hello", "max_tokens": 2})
    assert s.pick_openai("/v1/completions", body, request_id="mp2").request_id == "mp2"
    chat = {"model": MODEL, "messages": [MappingProxyType({"role": "user", "content": "hi"})]}
    assert s.pick_openai("/v1/chat/completions", chat, request_id="mp3").request_id == "mp3"
    with pytest.raises(llmd.InvalidArgumentError, match="not JSON-serializable"):
        s.pick_openai("/v1/completions", {"model": MODEL, "prompt": object()})


def test_integer_arguments_out_of_range_are_invalid_argument_errors() -> None:
    """Every integer argument out of its range raises `InvalidArgumentError`
    (a `ValueError`), as other bad values of the same arguments do, never a
    bare `OverflowError`; a non-integer stays a `TypeError`."""
    s = llmd.Scheduler.default()
    fleet(s, 1)
    s.pick(model=MODEL, prompt="x", request_id="r")
    calls: list[Callable[[], object]] = [
        lambda: s.on_tokens("r", -1),
        lambda: s.on_tokens("r", 1 << 64),
        lambda: llmd.Scheduler.default(seed=-1),
        lambda: llmd.Scheduler.from_yaml(HEAD + "- type: queue-scorer\n", seed=1 << 70),
        lambda: llmd.KvIndex(capacity_blocks=-1),
        lambda: llmd.KvIndex(max_endpoints=1 << 200),
        lambda: llmd.BlockHasher(block_size=-1),
        lambda: s.pick(model=MODEL, prompt="x", priority=1 << 31),
        lambda: s.pick_batch([{"model": MODEL, "prompt": "x", "priority": 1 << 31}]),
        lambda: s.pick_batch([{"model": MODEL, "prompt": "x", "lora_name": "a", "lora_id": 1 << 63}]),
        lambda: llmd.BlockHasher().block_hashes([1] * 16, mm_items=[("img", -1, 4)]),
        lambda: llmd.BlockHasher().block_hashes([1] * 16, prompt_embeds=(b"x", -1)),
        lambda: llmd.KvIndex().prompt_keys([1] * 16, mm_items=[("img", 0, 1 << 70)]),
        lambda: llmd.KvIndex(capacity_blocks=10**5000),
        lambda: s.update_metrics("pod-0", waiting_queue_size=-3),
    ]
    for call in calls:
        with pytest.raises(llmd.InvalidArgumentError, match="out of range") as info:
            call()
        assert isinstance(info.value, ValueError) and not isinstance(info.value, OverflowError)
    # Likewise an int too large for a float where a float is taken.
    huge = 10**400
    floats: list[Callable[[], object]] = [
        lambda: s.pick(model=MODEL, prompt="x", ttft_slo_ms=huge),
        lambda: s.pick(model=MODEL, prompt="x", arrived_at=huge),
        lambda: s.pick_batch([{"model": MODEL, "prompt": "x", "tpot_slo_ms": huge}]),
        lambda: s.expire_requests(huge),
        lambda: s.update_metrics("pod-0", kv_cache_usage=huge),
        lambda: llmd.KvIndex(speculative_ttl_s=huge),
    ]
    for call in floats:
        with pytest.raises(llmd.InvalidArgumentError, match="too large") as info:
            call()
        assert isinstance(info.value, ValueError) and not isinstance(info.value, OverflowError)
    with pytest.raises(TypeError):
        s.on_tokens("r", 1.5)  # type: ignore[arg-type]
    assert s.on_tokens("r", 2)
    # A NaN or an infinity in engine usage is refused, not read as absent.
    with pytest.raises(llmd.InvalidArgumentError, match="finite"):
        s.on_complete("r", usage={"completion_tokens": float("nan")})


def test_index_block_size_comes_from_the_hasher() -> None:
    assert llmd.KvIndex().block_size == 16
    assert llmd.KvIndex(block_size=32).block_size == 32
    hasher = llmd.BlockHasher(block_size=64)
    assert llmd.KvIndex(hasher=hasher).block_size == 64
    assert llmd.KvIndex(hasher=hasher, block_size=64).block_size == 64
    with pytest.raises(llmd.InvalidArgumentError, match="differs from the hasher"):
        llmd.KvIndex(hasher=hasher, block_size=16)


HEAD = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"


def test_session_token_response_header() -> None:
    import base64

    s = llmd.Scheduler.from_yaml(HEAD + "- type: session-affinity-scorer\n", seed=1)
    fleet(s, 3)
    d = s.pick(model=MODEL, prompt="hi")
    assert d.target is not None
    token = d.response_headers["x-session-token"]
    assert base64.b64decode(token).decode() == d.target["name"]
    assert "x-session-token" not in d.headers
    again = s.pick(model=MODEL, prompt="next turn", headers={"x-session-token": token})
    assert again.target == d.target
    plain = llmd.Scheduler.from_yaml(HEAD + "- type: queue-scorer\n")
    fleet(plain, 1)
    assert plain.pick(model=MODEL, prompt="hi").response_headers == {}


def test_conditional_decode_precondition_failed() -> None:
    s = llmd.Scheduler.default(seed=1)
    fleet(s, 2)
    tokens = list(range(512))
    with pytest.raises(llmd.PreconditionFailedError) as miss:
        s.pick(model=MODEL, tokens=tokens, request_id="c", headers={"Prefer": "if-available"})
    assert isinstance(miss.value, RuntimeError) and isinstance(miss.value, llmd.LlmdError)
    assert (miss.value.code, miss.value.detail) == ("precondition_failed", 412)
    assert all(s.endpoint_state(n)["inflight_requests"] == 0 for n in s.endpoints())
    warm = s.pick(model=MODEL, tokens=tokens, request_id="w")
    s.on_complete("w", cached_tokens=0)
    hit = s.pick(model=MODEL, tokens=tokens, request_id="h", headers={"prefer": "if-available"})
    assert hit.target == warm.target


def test_an_endpoint_over_the_index_slot_limit_is_refused_and_counted() -> None:
    s = llmd.Scheduler.from_yaml(
        HEAD + "- name: kv\n  type: approx-prefix-cache-producer\n  parameters: {maxEndpoints: 2}\n"
        "- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: kv}\n"
        "- type: max-score-picker\n"
    )
    fleet(s, 2)
    with pytest.raises(llmd.ResourceExhaustedError, match="all 2 slots") as info:
        s.add_endpoint("pod-2", "10.0.0.2:8000", model=MODEL)
    assert (info.value.code, info.value.detail) == ("index", 1005)
    assert s.endpoints() == ["pod-0", "pod-1"]
    assert "llmd_kvindex_endpoints_refused_total 1" in s.render_metrics()
    s.remove_endpoint("pod-0")
    s.add_endpoint("pod-2", "10.0.0.2:8000", model=MODEL)
    assert sorted(s.endpoints()) == ["pod-1", "pod-2"]


def test_trace_context_continues_the_callers_trace() -> None:
    s = llmd.Scheduler.default()
    fleet(s, 2)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    d = s.pick(model=MODEL, prompt="hello", headers={"traceparent": parent, "tracestate": "k=v"})
    trace = d.trace
    assert trace is not None
    assert trace["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace["parent_span_id"] == "00f067aa0ba902b7"
    assert len(trace["span_id"]) == 16 and trace["span_id"] != trace["parent_span_id"]
    assert (trace["flags"], trace["tracestate"]) == (1, "k=v")
    assert d.headers["traceparent"] == f"00-{trace['trace_id']}-{trace['span_id']}-01"
    # Without one, or with a malformed one: no trace context, counted.
    assert s.pick(model=MODEL, prompt="hello").trace is None
    bad = s.pick(model=MODEL, prompt="hello", headers={"traceparent": "00-zz-00-01"})
    assert bad.trace is None and "traceparent" not in bad.headers
    assert 'llmd_trace_context_invalid_total{header="traceparent"} 1' in s.render_metrics()


SLO_AWARE = """\
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: predicted-latency-producer
  parameters:
    streamingMode: true
- type: slo-headroom-tier-filter
- type: latency-scorer
- type: max-score-picker
"""


def test_latency_predictions_are_explained_and_summarised() -> None:
    s = llmd.Scheduler.from_yaml(SLO_AWARE, seed=1)
    fleet(s, 2)
    d = s.pick(model=MODEL, tokens=list(range(3200)), request_id="p-1", headers={"x-llm-d-slo-ttft-ms": "500"})
    predicted = d.explain()["predicted_latency"]
    assert sorted(p["endpoint"] for p in predicted) == ["pod-0", "pod-1"]
    for p in predicted:
        # Nothing learnt yet: llm-d's throughput heuristic, 3,200 tokens at 15,928 tok/s.
        assert p["source"] == "heuristic"
        assert abs(p["prediction"]["ttft_ms"] - 3200 / 15.928) < 1e-6
        assert p["prediction"]["tpot_ms"] is None
        assert p["features"]["input_tokens"] == 3200
        assert p["ttft_valid"] and p["ttft_headroom_ms"] > 0
    assert s.on_first_token("p-1") and s.on_tokens("p-1", 4)
    summary = s.on_complete("p-1")
    assert summary is not None
    predicted_for_target = summary["predicted"]
    assert predicted_for_target is not None and predicted_for_target["tpot_ms"] is None
    assert 'llmd_predicted_ttft_seconds_count{endpoint="' in s.render_metrics()
    assert 'llmd_latency_prediction_error_ratio_count{endpoint="' in s.render_metrics()


def test_pick_takes_multimodal_items_for_the_embeddings_cache() -> None:
    s = llmd.Scheduler.from_yaml(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: mm-embeddings-cache-scorer\n- type: max-score-picker\n",
        seed=5,
    )
    fleet(s, 3)
    items = ["img-cat", "img-dog"]
    first = s.pick(model=MODEL, tokens=list(range(32)), request_id="a", mm_items=items)
    assert first.target is not None
    s.on_complete("a")
    # The endpoint that encoded the items is where they go again.
    for i in range(10):
        d = s.pick(model=MODEL, tokens=list(range(32)), request_id=f"b{i}", mm_items=items[::-1])
        assert d.target is not None and d.target["name"] == first.target["name"]
        s.on_complete(f"b{i}")
    with pytest.raises(llmd.InvalidArgumentError, match="mm_items"):
        s.pick(model=MODEL, tokens=[1, 2], mm_items=["ok", ""])
