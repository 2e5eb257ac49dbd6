"""Every ZMQ frame case of vectors.json through llmd.parse_topic / parse_seq."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import vectors

import llmd


@pytest.mark.parametrize("case", vectors()["zmq_frame_cases"], ids=lambda c: str(c["id"]))
def test_zmq_frame_case(case: dict[str, Any]) -> None:
    topic, seq = bytes.fromhex(case["topic_hex"]), bytes.fromhex(case["seq_hex"])
    if case["expected_error"]:
        with pytest.raises(llmd.EventDecodeError) as info:
            llmd.parse_topic(topic)
            llmd.parse_seq(seq)
        assert info.value.code in ("seq_length", "topic_not_utf8")
        return
    e = case["expected"]
    t = llmd.parse_topic(topic)
    assert (t.topic, t.pod, t.model, t.conforms_to_convention) == (e["topic"], e["pod"], e["model"], e["conforms_to_convention"])
    assert llmd.parse_seq(seq) == int(e["seq"])
    assert t == llmd.parse_topic(topic) and repr(t).startswith("Topic(")


def test_replay_end_marker() -> None:
    assert llmd.parse_seq(b"\xff" * 8) == llmd.REPLAY_END_SEQ == 2**64 - 1
