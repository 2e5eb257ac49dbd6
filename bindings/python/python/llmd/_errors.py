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
]


class LlmdError(Exception):
    """Root of every error raised by llmd."""


class ConfigError(LlmdError, ValueError):
    """A scheduler configuration (YAML/JSON) is invalid; the message names the
    plugin, the field and the reason."""


class EventDecodeError(LlmdError, ValueError):
    """A KV-event payload is not a valid vLLM ``EventBatch``.

    ``code`` is a stable name of the defect (``"truncated"``,
    ``"wrong_field_type"``, ...) and ``offset`` the byte where it was found.
    """

    code: str | None = None
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


class ResourceExhaustedError(LlmdError, RuntimeError):
    """Every candidate endpoint is saturated, or a capacity limit was hit."""
