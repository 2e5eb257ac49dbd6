"""llmd: an embeddable scheduling library for LLM inference routers.

The work happens in Rust (``llmd._native``); every call that does real work
releases the GIL, and every object can be shared between threads.
"""

from __future__ import annotations

from llmd._errors import (
    ConfigError,
    EventDecodeError,
    HashError,
    InvalidArgumentError,
    LlmdError,
    NoEndpointsError,
    ResourceExhaustedError,
    UnknownEndpointError,
)
from llmd._native import __version__

__all__ = [
    "__version__",
    "LlmdError",
    "ConfigError",
    "EventDecodeError",
    "HashError",
    "InvalidArgumentError",
    "UnknownEndpointError",
    "NoEndpointsError",
    "ResourceExhaustedError",
]
