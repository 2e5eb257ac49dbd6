"""llmd: an embeddable scheduling library for LLM inference routers.

The work happens in Rust (``llmd._native``); every call that does real work
releases the GIL, and every object can be shared between threads.
"""

from __future__ import annotations

from typing import TypeAlias

from llmd._errors import (
    ConfigError,
    EventDecodeError,
    HashError,
    InvalidArgumentError,
    IoError,
    LlmdError,
    NoEndpointsError,
    NotExecutedWarning,
    PreconditionFailedError,
    ResourceExhaustedError,
    UnknownEndpointError,
)
from llmd._types import (
    ConfigReport,
    EndpointState,
    FeedSetting,
    IndexApplyResult,
    IndexStats,
    IngestResult,
    LatencyPrediction,
    PluginRecord,
    PodStats,
    RequestSummary,
    Target,
    TierBlocks,
    TraceContext,
)
from llmd._native import (
    NEWEST_VLLM_VERSION,
    REPLAY_END_SEQ,
    AllBlocksCleared,
    BlockHasher,
    ChatSession,
    BlockRemoved,
    BlockStored,
    Decision,
    EventBatch,
    Feed,
    HashChain,
    KvIndex,
    OtlpExporter,
    Scheduler,
    Tokenizer,
    Topic,
    __version__,
    decode_event_batch,
    parse_seq,
    parse_topic,
)

KvEvent: TypeAlias = BlockStored | BlockRemoved | AllBlocksCleared
"""Any decoded KV event."""

__all__ = [
    "__version__",
    "NEWEST_VLLM_VERSION",
    "BlockHasher",
    "HashChain",
    "decode_event_batch",
    "EventBatch",
    "BlockStored",
    "BlockRemoved",
    "AllBlocksCleared",
    "KvEvent",
    "Topic",
    "parse_topic",
    "parse_seq",
    "REPLAY_END_SEQ",
    "Scheduler",
    "Feed",
    "OtlpExporter",
    "Tokenizer",
    "ChatSession",
    "PodStats",
    "FeedSetting",
    "Decision",
    "Target",
    "TraceContext",
    "IngestResult",
    "RequestSummary",
    "LatencyPrediction",
    "EndpointState",
    "IndexStats",
    "IndexApplyResult",
    "TierBlocks",
    "KvIndex",
    "LlmdError",
    "ConfigError",
    "EventDecodeError",
    "HashError",
    "InvalidArgumentError",
    "UnknownEndpointError",
    "NoEndpointsError",
    "ResourceExhaustedError",
    "PreconditionFailedError",
    "IoError",
    "NotExecutedWarning",
    "ConfigReport",
    "PluginRecord",
]
