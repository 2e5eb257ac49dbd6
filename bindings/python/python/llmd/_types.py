"""Shapes of the plain-data results returned by the native module.

They exist for type checkers and documentation; at run time the results are
ordinary dicts.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "Target",
    "IngestResult",
    "IndexApplyResult",
    "RequestSummary",
    "EndpointState",
    "IndexStats",
    "TierBlocks",
    "ConfigReport",
    "PluginRecord",
    "SettingNotExecuted",
    "TraceContext",
]


class Target(TypedDict):
    """A chosen endpoint."""

    name: str
    address: str


class TraceContext(TypedDict):
    """The scheduling span's W3C trace context (ids as lowercase hex)."""

    trace_id: str
    parent_span_id: str
    span_id: str
    flags: int
    tracestate: str | None


class IngestResult(TypedDict):
    """What one KV-event payload changed."""

    stored: int
    removed: int
    cleared: int
    skipped: int
    """Blocks or events not placed, all reasons (the sum of the three below)."""
    skipped_unknown_parent: int
    """Router keys: blocks whose parent or engine key was never stored."""
    skipped_unknown_medium: int
    """Events with a ``medium`` other than GPU, CPU or storage."""
    skipped_stale: int
    """Events of an endpoint removed while its batch was applied."""
    parity_mismatches: int
    """Engine parity: published keys that differ from the router's own hash of the same tokens (the configured seed, algorithm or block size is wrong)."""
    superseded: int
    """In a batch with more than one ``AllBlocksCleared``, the events before the last one, which it erases: not applied one by one, in none of the other counts (0 for a batch with one clear, applied whole)."""
    seq_status: str | None
    """``"first"``, ``"in_order"``, ``"gap"``, ``"restart"``, ``"duplicate"``, ``"replayed"`` (a recent gap's next lost batch, from the replay socket in order: applied) or None without ``seq``."""
    missing: int
    """Batches lost before this one (``seq_status == "gap"``)."""


class RequestSummary(TypedDict):
    """What is known about a finished request (clock times in nanoseconds)."""

    id: str
    target: str
    prefill_target: str | None
    prompt_tokens: int
    scheduled_at_ns: int
    first_token_at_ns: int | None
    finished_at_ns: int
    output_tokens: int
    cached_tokens: int | None
    error: str | None
    predicted: LatencyPrediction | None
    """The latency model's prediction for the request on its target at
    dispatch (configs with a ``predicted-latency-producer``), to set beside the
    measured TTFT and TPOT."""


class LatencyPrediction(TypedDict):
    """Predicted latencies of a request on an endpoint (milliseconds)."""

    ttft_ms: float
    tpot_ms: float | None
    """None until the model has learnt TPOT (streaming mode)."""


class EndpointState(TypedDict):
    """An endpoint's live view: last metrics snapshot and in-flight load."""

    name: str
    address: str
    metrics: dict[str, Any]
    inflight_requests: int
    inflight_tokens: int


class IndexApplyResult(TypedDict):
    """What one KV-event payload changed in a ``KvIndex``."""

    stored: int
    removed: int
    cleared: int
    unplaceable: int
    """Blocks that could not be placed (unknown parent, a parent ending inside a router block, too few tokens)."""
    unknown_media: int
    parity_checks: int
    """Engine parity: parent-less ``BlockStored`` events re-hashed as a self-check."""
    parity_mismatches: int
    """Self-checks that disagreed: the hasher's seed, algorithm or block size is wrong."""
    ignored: int
    superseded: int
    """In a batch with more than one ``AllBlocksCleared``, the events before the last one, which it erases: not applied one by one, in none of the other counts (0 for a batch with one clear, applied whole)."""
    seq_status: str | None
    missing: int


class TierBlocks(TypedDict):
    """Blocks one endpoint holds, per tier."""

    gpu: int
    cpu: int
    storage: int
    speculative: int


class IndexStats(TypedDict):
    """Occupancy and health counters of a ``KvIndex``."""

    entries: int
    capacity: int
    holdings: int
    table_bytes: int
    evictions: int
    unplaceable: int
    unknown_media: int
    parity_checks: int
    parity_mismatches: int
    ignored_events: int
    speculative_expired: int
    speculative_confirmed: int
    endpoints: dict[str, TierBlocks]


class SettingNotExecuted(TypedDict):
    """A setting accepted but not executed by the library."""

    setting: str
    """Dotted path inside the plugin's ``parameters``."""
    reason: str
    """What the host does instead."""


class PluginRecord(TypedDict):
    """One plugin instance of a loaded config."""

    name: str
    plugin_type: str
    injected: bool
    """Added by the loader (llm-d's defaults) rather than written in the config."""
    status: dict[str, str]
    """``{"status": "executed"}`` or ``{"status": "accepted_not_executed", "reason": ...}``."""
    remark: str | None
    parameters: Any
    """The plugin's ``parameters`` as configured (``None`` when none)."""
    settings_not_executed: list[SettingNotExecuted]


class ConfigReport(TypedDict):
    """What loading a config did (``Scheduler.report``)."""

    api_version: str
    feature_gates: list[list[Any]]
    """``[name, enabled]`` pairs."""
    plugins: list[PluginRecord]
    warnings: list[str]
    """Deprecations, Alpha plugins, ignored references."""
    document_not_executed: list[SettingNotExecuted]
    """Document-level settings (outside any plugin's parameters) accepted but
    not executed, e.g. ``flowControl.maxRequests``; ``setting`` is the document path."""
    not_executed: list[str]
    """One line per configured plugin or setting that is accepted but not executed."""


class PodStats(TypedDict):
    """One pod's counters in ``Feed.stats()``."""

    name: str
    address: str
    events: int
    """KV-event batches applied to the scheduler."""
    blocks: int
    """Blocks stored by those batches."""
    blocks_removed: int
    gaps: int
    """Sequence gaps seen (lost batches)."""
    duplicates: int
    """Batches skipped as already applied."""
    restarts: int
    """Publisher restarts seen (numbering went back)."""
    replays: int
    """Replays that covered what was asked."""
    replays_too_old: int
    """Replays whose first batch was past what was asked (lost for good)."""
    replays_incomplete: int
    replays_failed: int
    replays_skipped: int
    """Replays not asked for: the pod's replay socket failed lately (backed off)."""
    clears: int
    """Times the pod's index entries were dropped (unrecoverable gap)."""
    reconnects: int
    heartbeat_timeouts: int
    connect_failures: int
    malformed: int
    """Messages or handshakes dropped as malformed."""
    decode_errors: int
    queue_drops: int
    not_applied: int
    """Batches that arrived while the pod was not registered or the feed was not running."""
    scrapes: int
    scrape_errors: int
    evictions: int
    """Times the pod was removed from the scheduler for not answering."""
    registration_failures: int
    """Scrapes of an evicted pod that answered but could not be registered again (e.g. the index's endpoint slots all taken): it stays unroutable and is tried at each scrape."""
    last_event_age_s: float | None
    last_scrape_age_s: float | None
    up: bool
    registered: bool


class FeedSetting(TypedDict):
    """A config setting and what ``Feed`` does with it."""

    plugin: str
    setting: str
    executed: bool
    note: str
