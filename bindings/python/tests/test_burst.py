"""burst-prefix-cache-producer through Scheduler.pick_batch: a window's
requests sharing a prompt go to one replica, as llm-d assigns a window."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT

import llmd

CONFIG = REPO_ROOT / "testdata" / "llm-d-configs" / "18-burst-prefix-cache.yaml"


def test_a_window_colocates_each_group_and_reports_errors_in_place() -> None:
    with pytest.warns(llmd.NotExecutedWarning, match="windowDurationMs"):
        s = llmd.Scheduler.from_file(CONFIG, seed=1)
    for i in range(4):
        s.add_endpoint(f"pod-{i}", f"10.0.0.{i}:8000", model="m")
    a, b = list(range(1000, 1640)), list(range(5000, 5640))
    reqs: list[dict[str, object]] = [
        {"model": "m", "tokens": a if i % 2 == 0 else b, "request_id": f"r{i}"} for i in range(8)
    ]
    reqs.append({"model": "m", "prompt": ""})  # refused as pick refuses it
    out = s.pick_batch(reqs)
    assert len(out) == 9
    assert isinstance(out[-1], llmd.InvalidArgumentError)
    decisions = [d for d in out[:8] if isinstance(d, llmd.Decision)]
    assert len(decisions) == 8
    assert [d.request_id for d in decisions] == [f"r{i}" for i in range(8)]
    targets_a = {d.target["name"] for d in decisions[0::2] if d.target is not None}
    targets_b = {d.target["name"] for d in decisions[1::2] if d.target is not None}
    assert len(targets_a) == 1 and len(targets_b) == 1 and targets_a != targets_b
    assert s.burst_window == pytest.approx(0.1)
    text = s.render_metrics()
    assert 'llmd_burst_requests_total{plugin="burst-prefix-cache-producer",outcome="colocated"} 8' in text
    # Each request's lifecycle is the host's as after pick.
    for d in decisions:
        assert s.on_complete(d.request_id) is not None
    assert s.open_requests == 0


def test_malformed_requests_and_no_burst_producer() -> None:
    s = llmd.Scheduler.default(seed=1)
    s.add_endpoint("pod-0", "10.0.0.0:8000")
    assert s.burst_window is None
    with pytest.raises(llmd.InvalidArgumentError, match='unknown request key "modle"'):
        s.pick_batch([{"modle": "m", "prompt": "x"}])
    with pytest.raises(TypeError):
        s.pick_batch([{"prompt": 3}])
    out = s.pick_batch([{"prompt": "hello"}, {"prompt": "world", "request_id": "w"}])
    assert all(isinstance(d, llmd.Decision) for d in out)
