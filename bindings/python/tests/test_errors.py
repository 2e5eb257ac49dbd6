"""The exception hierarchy: one root, each class also a matching built-in."""

from __future__ import annotations

import pytest

import llmd


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (llmd.ConfigError, ValueError),
        (llmd.EventDecodeError, ValueError),
        (llmd.HashError, ValueError),
        (llmd.InvalidArgumentError, ValueError),
        (llmd.UnknownEndpointError, KeyError),
        (llmd.NoEndpointsError, LookupError),
        (llmd.ResourceExhaustedError, RuntimeError),
        (llmd.PreconditionFailedError, RuntimeError),
    ],
)
def test_hierarchy(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, llmd.LlmdError)
    assert issubclass(cls, builtin)
    assert cls.__module__ == "llmd._errors"


def test_unknown_endpoint_message_is_not_quoted() -> None:
    assert str(llmd.UnknownEndpointError("no endpoint 'a'")) == "no endpoint 'a'"


def test_version() -> None:
    parts = llmd.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


def test_codes_default_to_none() -> None:
    assert llmd.LlmdError("x").code is None and llmd.LlmdError("x").detail is None
    assert llmd.EventDecodeError("x").offset is None
    assert llmd.NoEndpointsError("x").dropped_reason is None
