"""Exception hierarchy of llmd.

Every error raised by the library derives from :class:`LlmdError`; each
subclass also derives from the built-in exception a caller would naturally
catch (``except ValueError`` keeps working for bad configuration or bytes).
The native module raises these classes by name, so renaming one here is a
breaking change on both sides.
"""

from __future__ import annotations

__all__ = [
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
]


class LlmdError(Exception):
    """Root of every error raised by llmd.

    ``code`` is a stable lowercase name on every error the library raises
    (the same names as the C ABI's ``llmd_error_code`` and Go's
    ``Error.Code``): the scheduler's error kind (``"no_endpoints"``,
    ``"resource_exhausted"``, ``"precondition_failed"``, ``"kv_events"``, ...),
    the defect's name for payloads and frames that cannot be decoded
    (``"truncated"``, ...), else the exception's kind (``"invalid_argument"``,
    ``"hash"``, ``"config"``, ...). ``detail`` is the scheduler's numeric code
    where there is one: llm-d's HTTP status for scheduling outcomes (503, 429,
    412, 400) and 1001 and up for library errors.
    """

    code: str | None = None
    detail: int | None = None


class ConfigError(LlmdError, ValueError):
    """A scheduler configuration (YAML/JSON) is invalid; the message names the
    plugin, the field and the reason."""


class IoError(LlmdError, OSError):
    """Reading a file (a config, an endpoint file) or binding a socket failed;
    ``code`` is ``"io"``, as the C ABI's ``LLMD_STATUS_IO``."""


class EventDecodeError(LlmdError, ValueError):
    """A KV-event payload is not a valid vLLM ``EventBatch``.

    From ``decode_event_batch``, ``code`` is the defect's name
    (``"truncated"``, ``"wrong_field_type"``, ...) and ``offset`` the byte
    where it was found; from ``parse_topic`` / ``parse_seq`` the frame defect;
    from ``Scheduler.ingest_kv_events`` ``"kv_events"`` (``detail`` 1004).
    """

    offset: int | None = None


class HashError(LlmdError, ValueError):
    """A block-hash request cannot be served (unsupported algorithm/version
    combination, token out of range, inconsistent multimodal items)."""


class InvalidArgumentError(LlmdError, ValueError):
    """An argument has the right type but an unusable value."""


class UnknownEndpointError(LlmdError, KeyError):
    """The named endpoint is not registered."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a message reads better unquoted.
        return str(self.args[0]) if self.args else ""


class NoEndpointsError(LlmdError, LookupError):
    """No endpoint can serve the request (none registered, or all filtered out)."""

    dropped_reason: str | None = None
    """llm-d's ``x-llm-d-request-dropped-reason`` value."""


class ResourceExhaustedError(LlmdError, RuntimeError):
    """Every candidate endpoint is saturated, or a capacity limit was hit."""

    dropped_reason: str | None = None
    """llm-d's ``x-llm-d-request-dropped-reason`` value, when a scheduling
    profile rejected the request."""


class PreconditionFailedError(LlmdError, RuntimeError):
    """Conditional decode: the request carries ``Prefer: if-available`` and the
    chosen endpoint holds no cached prefix of the prompt (llm-d answers 412).
    Nothing was recorded for the request."""


class NotExecutedWarning(UserWarning):
    """A configured plugin or setting is accepted (validated) but not executed
    by the library: the host must do what it asks (subscribe to KV events,
    scrape ``/metrics``, tokenize, ...). One warning per setting is emitted
    when a ``Scheduler`` is built from a config; ``Scheduler.report`` lists
    them all, and ``strict=True`` refuses such configs instead."""
