"""Decision spans reach a real OTLP/HTTP receiver as part of the caller's trace.

The receiver decodes what llmd posts with the official OTLP protobuf
definitions (the `opentelemetry-proto` package): one trace per request, the
scheduling span a child of the gateway's span and carrying the id the
decision forwards in `traceparent` (the parent a vLLM worker's spans get),
the plugin spans under it; unsampled requests never leave the process.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

import llmd

CONFIG = """\
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: max-score-picker
"""

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_SPAN = "00f067aa0ba902b7"


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.content_types: list[str] = []


class Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(body)
        self.server.requests.append(req)
        self.server.content_types.append(self.headers["Content-Type"])
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    t = threading.Thread(target=r.serve_forever, daemon=True)
    t.start()
    yield r
    r.shutdown()
    r.server_close()


def scheduler() -> llmd.Scheduler:
    s = llmd.Scheduler(CONFIG, seed=1)
    for i in range(3):
        s.add_endpoint(f"pod-{i}", f"10.0.0.{i}:8000")
    return s


def test_one_trace_from_gateway_to_worker(receiver: Receiver) -> None:
    port = receiver.server_address[1]
    exp = llmd.OtlpExporter(f"http://127.0.0.1:{port}/v1/traces", service_name="router-a", flush_interval=0.05)
    s = scheduler()
    start = time.time()
    d = s.pick(
        prompt="hello",
        request_id="r1",
        headers={"traceparent": f"00-{TRACE}-{GATEWAY_SPAN}-01", "tracestate": "vendor=x"},
    )
    end = time.time()
    assert exp.export_decision(d, start, end)
    # An unsampled request, and one without trace context: nothing sent.
    for i, h in enumerate([{"traceparent": f"00-{TRACE[::-1]}-{GATEWAY_SPAN}-00"}, {}]):
        other = s.pick(prompt="x", request_id=f"u{i}", headers=h)
        assert not exp.export_decision(other, start, end)
    assert exp.flush(10.0)
    assert exp.flush(1e19)  # a timeout too long for the clock: no panic
    stats = exp.stats()
    assert stats["unsampled_decisions"] == 2 and stats["dropped_spans"] == 0 and stats["failed_spans"] == 0

    spans = [sp for req in receiver.requests for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    assert receiver.content_types and set(receiver.content_types) == {"application/x-protobuf"}
    resource = receiver.requests[0].resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "router-a"
    assert stats["exported_spans"] == len(spans) >= 3
    assert {sp.trace_id.hex() for sp in spans} == {TRACE}
    # The scheduling span: the gateway's child, with the id forwarded to the worker.
    forwarded = d.headers["traceparent"].split("-")[2]
    roots = [sp for sp in spans if sp.parent_span_id.hex() == GATEWAY_SPAN]
    assert len(roots) == 1 and roots[0].span_id.hex() == forwarded
    assert roots[0].trace_state == "vendor=x"
    assert roots[0].start_time_unix_nano == int(start * 1e9) and roots[0].end_time_unix_nano >= roots[0].start_time_unix_nano
    # Every other span hangs under it, with distinct ids.
    ids = {sp.span_id.hex() for sp in spans}
    assert len(ids) == len(spans)
    for sp in spans:
        if sp is not roots[0]:
            assert sp.parent_span_id.hex() in ids, sp.name
    # The picked endpoint is in the attributes, as llm-d names it.
    attrs = {a.key for sp in spans for a in sp.attributes}
    assert any(k.startswith("llm_d.") or k.startswith("gen_ai.") for k in attrs), attrs
    exp.stop()


def test_a_full_queue_drops_and_counts_and_a_dead_endpoint_fails_and_counts(receiver: Receiver) -> None:
    s = scheduler()
    d = s.pick(prompt="hello", request_id="r", headers={"traceparent": f"00-{TRACE}-{GATEWAY_SPAN}-01"})
    tiny = llmd.OtlpExporter(f"http://127.0.0.1:{receiver.server_address[1]}/v1/traces", max_queue_spans=1, flush_interval=5.0)
    assert not tiny.export_decision(d, 1.0, 2.0)  # more spans than the queue holds
    assert tiny.stats()["dropped_spans"] > 0
    tiny.stop()
    # Nothing listens there (the discard port, never an ephemeral port that
    # another test could take): the batch fails and is counted; nothing raises.
    receiver.shutdown()
    receiver.server_close()
    dead = llmd.OtlpExporter("http://127.0.0.1:9/v1/traces", flush_interval=0.01, timeout=1.0)
    assert dead.export_decision(d, 1.0, 2.0)
    assert dead.flush(10.0)
    assert dead.stats()["failed_spans"] > 0 and dead.stats()["exported_spans"] == 0
    dead.stop()
    # Sampling ratio 0: sampled requests are not exported either.
    none = llmd.OtlpExporter("http://127.0.0.1:9/v1/traces", sampling_ratio=0.0)
    assert not none.export_decision(d, 1.0, 2.0)
    none.stop()
    url = "http://127.0.0.1:9/v1/traces"
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.OtlpExporter(url, sampling_ratio=1.5)
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.OtlpExporter(url, max_queue_spans=0)
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.OtlpExporter(url, timeout=-1.0)
    # A zero interval would spin the export thread, a zero timeout fail
    # every POST, an endless timeout overflow a deadline.
    for interval, timeout in ((0.0, 5.0), (0.5, 0.0), (0.5, 1e19), (float("nan"), 5.0)):
        with pytest.raises(llmd.InvalidArgumentError):
            llmd.OtlpExporter(url, flush_interval=interval, timeout=timeout)
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.OtlpExporter("https://collector:4318/v1/traces")


def test_gateway_scheduler_and_pod_in_one_trace(receiver: Receiver) -> None:
    """The whole path on loopback, one trace in the collector: the gateway's
    root span (the test plays the gateway and exports it), the scheduler's
    spans under it (llmd.OtlpExporter), and a fake vLLM pod's
    `llm_request` (`llmd pods --otlp-endpoint`) under the traceparent the
    decision forwarded."""
    import json as _json
    import subprocess
    import urllib.request

    from test_fleet_e2e import llmd_binary

    url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/traces"
    proc = subprocess.Popen(
        [str(llmd_binary()), "pods", "-n", "1", "--model", "m", "--speed", "50", "--otlp-endpoint", url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        name, http_url = proc.stdout.readline().split()[:2]
        s = llmd.Scheduler(CONFIG, seed=1)
        s.add_endpoint(name, http_url.removeprefix("http://"), model="m")
        exp = llmd.OtlpExporter(url, service_name="router", flush_interval=0.05)
        start = time.time()
        d = s.pick(model="m", prompt="hello there", request_id="e2e", headers={"traceparent": f"00-{TRACE}-{GATEWAY_SPAN}-01"})
        assert exp.export_decision(d, start, time.time())
        body = _json.dumps({"model": "m", "prompt": "hello there", "max_tokens": 4}).encode()
        req = urllib.request.Request(f"{http_url}/v1/completions", data=body, headers={"Content-Type": "application/json", **d.headers})
        with urllib.request.urlopen(req, timeout=30) as r:
            usage = _json.loads(r.read())["usage"]
        assert exp.flush(10.0)
        # The gateway exports its own root span to the same collector.
        gw = trace_service_pb2.ExportTraceServiceRequest()
        rs = gw.resource_spans.add()
        attr = rs.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", "gateway"
        root = rs.scope_spans.add().spans.add()
        root.trace_id, root.span_id, root.name = bytes.fromhex(TRACE), bytes.fromhex(GATEWAY_SPAN), "gateway.request"
        root.kind = root.SPAN_KIND_SERVER
        root.start_time_unix_nano, root.end_time_unix_nano = int(start * 1e9), time.time_ns()
        post = urllib.request.Request(url, data=gw.SerializeToString(), headers={"Content-Type": "application/x-protobuf"})
        urllib.request.urlopen(post, timeout=10).close()

        def spans() -> list[Any]:
            return [(rs.resource, sp) for q in receiver.requests for rs in q.resource_spans for ss in rs.scope_spans for sp in ss.spans]

        deadline = time.time() + 20
        while not any(sp.name == "llm_request" for _, sp in spans()) and time.time() < deadline:
            time.sleep(0.05)
        by_service: dict[str, list[Any]] = {}
        for res, sp in spans():
            service = {a.key: a.value.string_value for a in res.attributes}["service.name"]
            by_service.setdefault(service, []).append(sp)
        assert set(by_service) == {"gateway", "router", "vllm"}, by_service.keys()
        (gateway,) = by_service["gateway"]
        assert gateway.parent_span_id == b"" and gateway.span_id.hex() == GATEWAY_SPAN
        assert {sp.trace_id.hex() for v in by_service.values() for sp in v} == {TRACE}
        scheduling = next(sp for sp in by_service["router"] if sp.name == "gateway.request_orchestration")
        assert scheduling.parent_span_id.hex() == GATEWAY_SPAN
        pod = {sp.name: sp for sp in by_service["vllm"]}
        assert set(pod) == {"llm_request", "queue", "prefill", "decode"}
        # The pod's span continues the scheduling span, as vLLM's would.
        assert pod["llm_request"].parent_span_id == scheduling.span_id
        assert pod["queue"].parent_span_id == pod["prefill"].parent_span_id == pod["decode"].parent_span_id == pod["llm_request"].span_id
        assert pod["queue"].end_time_unix_nano == pod["prefill"].start_time_unix_nano
        attrs = {a.key: a.value for a in pod["llm_request"].attributes}
        assert attrs["gen_ai.usage.prompt_tokens"].int_value == usage["prompt_tokens"]
        assert attrs["gen_ai.usage.completion_tokens"].int_value == usage["completion_tokens"]
        assert attrs["gen_ai.usage.cached_tokens"].int_value == usage["prompt_tokens_details"]["cached_tokens"]
        assert pod["llm_request"].start_time_unix_nano <= pod["decode"].start_time_unix_nano <= pod["llm_request"].end_time_unix_nano
        exp.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
