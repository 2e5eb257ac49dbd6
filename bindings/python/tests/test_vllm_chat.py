"""OpenAI chat bodies give the ids vLLM's own chat-completions code gives.

The oracle (`vllm_chat.py`) runs vLLM 0.33.0's request validation, message
parsing, template resolution, keyword merging and `safe_apply_chat_template`
from its sdist, with transformers' tokenizer on the same files. Random bodies
cover what vLLM does beyond plain `apply_chat_template`: content parts of
every text type, empty and bare-string parts, the billing header, developer
messages (with tools), reasoning fields, tool calls with JSON, malformed or
empty arguments, `tools`, `documents`, `reasoning_effort`,
`chat_template_kwargs` with unset values, `continue_final_message` and
`add_special_tokens`.

Where vLLM answers, llmd gives the same ids; where vLLM's chat rules or the
template refuse a body, llmd refuses it too. Bodies that only vLLM's request
schema refuses (pydantic's union validation of message shapes) are counted:
llmd may still route them (the engine answers 400 either way).
"""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path
from typing import Any

import pydantic
import pytest
from conftest import REPO_ROOT
from test_tokenizer import TEMPLATES, TOOLS, WORDS, model_dir, text

import llmd
import vllm_chat

SRC = vllm_chat.source_dir()
pytestmark = pytest.mark.skipif(SRC is None, reason="LLMD_VLLM_SRC is not set (scripts/test-python.sh sets it)")
# Real production tokenizers (Qwen2.5, Llama 3: tokenizer.json and
# tokenizer_config.json with the model's own chat template), fetched by
# scripts/parity_sources.py.
REAL = os.environ.get("LLMD_REAL_TOKENIZERS")
REAL_MODELS = ["qwen2_5", "llama3"]

BILLING = "x-anthropic-billing-header: cch=7f3a; cc_version=1.0\n"
# A tool whose `defer_loading` is set on the tool only (vLLM copies it into
# the function), with a parameter typed as a list and text ending in a
# character only Python counts as whitespace.
DEFERRED: dict[str, Any] = {
    "type": "function",
    "defer_loading": True,
    "function": {
        "name": "lookup",
        "description": "Find a record\x1e ",
        "parameters": {"type": "object", "properties": {"q": {"type": ["string", "null"], "description": "query\x1f"}}},
    },
}


def part(rng: random.Random) -> Any:
    k = rng.random()
    if k < 0.45:
        return {"type": "text", "text": text(rng)}
    if k < 0.52:
        return text(rng)  # a bare string part
    if k < 0.57:
        return {"type": "text", "text": ""}
    if k < 0.62:
        return {"type": "refusal", "refusal": text(rng)}
    if k < 0.67:
        return {"type": "thinking", "thinking": text(rng)}
    if k < 0.75:
        return {"type": "text", "text": text(rng), "cache_control": {"type": "ephemeral"}}
    if k < 0.78:
        return {"type": "input_text", "text": text(rng)}
    if k < 0.80:
        return {"text": text(rng)}  # no type
    if k < 0.82:
        return {"type": "text", "text": None}
    return {"type": "text", "text": text(rng)}


def content(rng: random.Random) -> Any:
    k = rng.random()
    if k < 0.55:
        return text(rng)
    if k < 0.6:
        return None
    return [part(rng) for _ in range(rng.randint(0, 3))]


def message(rng: random.Random, role: str) -> dict[str, Any]:
    m: dict[str, Any] = {"role": role, "content": content(rng)}
    if role == "system" and rng.random() < 0.2:
        m["content"] = BILLING + text(rng)
    if role == "assistant":
        if rng.random() < 0.3:
            args = rng.choice(
                [
                    '{"city": "Paris"}',
                    "",
                    "not json",
                    "[1, 2]",
                    '{"city": "日本語", "n": 2}',
                    None,
                    {"city": "x"},
                    '{"x": 1e-05, "y": 1e16, "t": ["a", null]}',
                    # What Python's json.loads takes beyond strict JSON, or keeps exactly.
                    '{"x": NaN, "y": -Infinity, "z": Infinity}',
                    '{"n": 123456789012345678901234567890, "z": -0, "m": -9223372036854775809}',
                    '{"a": 1, "b": 2, "a": [3]}',
                    '{"big": 1e400, "s": "\\ud83d\\ude00 \\u00e9", "f": 2.50, "e": 1E2}',
                ]
            )
            m["tool_calls"] = [{"id": f"call{rng.randint(0, 99):09d}", "type": "function", "function": {"name": "get_weather", "arguments": args}}]
        if rng.random() < 0.2:
            m["reasoning"] = text(rng)
        if rng.random() < 0.15:
            m["reasoning_content"] = text(rng)
    if role == "tool":
        m["tool_call_id"] = f"call{rng.randint(0, 99):09d}"
    if role == "user" and rng.random() < 0.15:
        m["name"] = rng.choice(["bob", "ann"])
    if role == "developer" and rng.random() < 0.5:
        m["tools"] = TOOLS[:1]
    if rng.random() < 0.08:
        m["metadata"] = "ignored"
    if isinstance(m["content"], str) and rng.random() < 0.06:
        # Whitespace Python strips and Rust does not.
        m["content"] = rng.choice(["\x1e", "\x1c\n", "log \x1f"]) + m["content"] + rng.choice(["\x1d", " \x1e"])
    return m


def body(rng: random.Random, with_tools: bool) -> dict[str, Any]:
    msgs = []
    if rng.random() < 0.5:
        msgs.append(message(rng, rng.choice(["system", "system", "developer"])))
    for _ in range(rng.randint(1, 4)):
        msgs.append(message(rng, "user"))
        if rng.random() < 0.6:
            msgs.append(message(rng, "assistant"))
        if with_tools and rng.random() < 0.25:
            msgs.append(message(rng, "tool"))
        if rng.random() < 0.08:
            msgs.append(message(rng, "developer"))
    b: dict[str, Any] = {"model": "m", "messages": msgs}
    if msgs[-1]["role"] == "assistant" and rng.random() < 0.5:
        b["add_generation_prompt"] = False
        b["continue_final_message"] = True
    elif rng.random() < 0.2:
        b["add_generation_prompt"] = rng.random() < 0.5
    if with_tools and rng.random() < 0.5:
        b["tools"] = rng.choice([TOOLS, TOOLS[:1], [], TOOLS + [DEFERRED]])
    if rng.random() < 0.02:
        b["messages"] = []
    if rng.random() < 0.2:
        b["chat_template_kwargs"] = rng.choice(
            [
                {"enable_thinking": False},
                {"enable_thinking": True},
                {"unused": None, "other": "auto"},
                {"add_generation_prompt": False},
                {"custom_flag": 3},
                # Names the request's own fields also set, unset.
                {"add_generation_prompt": None, "continue_final_message": "auto"},
                {"tools": None, "documents": "auto", "reasoning_effort": None},
                {"enable_thinking": "auto", "add_generation_prompt": "auto"},
                {"tools": "auto"},
            ]
        )
    if rng.random() < 0.1:
        b["documents"] = [{"title": "doc", "text": text(rng)}]
    if rng.random() < 0.15:
        b["reasoning_effort"] = rng.choice(["low", "high", "none"])
    if rng.random() < 0.1:
        b["add_special_tokens"] = True
    if rng.random() < 0.1:
        b["truncate_prompt_tokens"] = rng.randint(1, 60)
        side = rng.choice([None, "left", "right"])
        if side is not None:
            b["truncation_side"] = side
    return b


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-chat")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_chat_bodies_match_vllm(template: Path, workdir: Path) -> None:
    assert SRC is not None
    d = model_dir(workdir, "bpe", template)
    ours = llmd.Tokenizer.from_dir(d)
    vllm = vllm_chat.VllmChat(SRC, d)
    assert ours.content_format == vllm.content_format()
    rng = random.Random(zlib.crc32(b"vllm-chat" + template.stem.encode()))
    with_tools = template.stem.startswith("tool_") or template.stem == "qwen3"
    outcomes = {"equal": 0, "both_refuse": 0, "schema_only": 0}
    for i in range(600):
        # 300 bodies, more for templates that refuse most (strict role
        # alternation) until 80 have rendered.
        if i >= 300 and outcomes["equal"] >= 80:
            break
        b = body(rng, with_tools)
        where = f"{template.stem} body {i}: {json.dumps(b, ensure_ascii=False)[:2000]}"
        try:
            want = vllm.encode(b)
        except pydantic.ValidationError:
            outcomes["schema_only"] += 1
            continue
        except Exception as e:  # vLLM's chat rules or the template refuse it
            with pytest.raises(llmd.InvalidArgumentError):
                ours.encode_openai("/v1/chat/completions", b)
            assert e is not None, where
            outcomes["both_refuse"] += 1
            continue
        got = ours.encode_openai("/v1/chat/completions", b)
        if got != want:
            rendered = vllm.render(b)
            pytest.fail(f"{where}\nvLLM rendered: {rendered!r}")
        outcomes["equal"] += 1
    # Enough bodies must render for the comparison to mean something.
    assert outcomes["equal"] >= 80, outcomes


def test_a_named_tool_use_template_serves_requests_with_tools(workdir: Path) -> None:
    """Named templates in tokenizer_config.json: vLLM (through transformers'
    get_chat_template) renders with `tool_use` when the request has tools,
    `default` otherwise."""
    assert SRC is not None
    d = model_dir(workdir, "bpe", None)
    templates = REPO_ROOT / "testdata" / "chat-templates"
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = [
        {"name": "default", "template": (templates / "template_chatml.jinja").read_text()},
        {"name": "tool_use", "template": (templates / "tool_chat_template_hermes.jinja").read_text()},
    ]
    named = workdir / "named-templates"
    named.mkdir(exist_ok=True)
    for f in ("tokenizer.json",):
        (named / f).write_bytes((d / f).read_bytes())
    (named / "tokenizer_config.json").write_text(json.dumps(cfg))
    ours = llmd.Tokenizer.from_dir(named)
    vllm = vllm_chat.VllmChat(SRC, named)
    rng = random.Random(17)
    seen = {"tools": 0, "plain": 0}
    # 700 bodies: an empty tools list (a quarter of those with tools) is
    # refused, as vLLM refuses it, and leaves fewer bodies with tools.
    for i in range(700):
        b = body(rng, True)
        try:
            want = vllm.encode(b)
        except Exception:
            continue
        assert ours.encode_openai("/v1/chat/completions", b) == want, f"body {i}: {json.dumps(b)[:1500]}"
        seen["tools" if b.get("tools") is not None else "plain"] += 1
    assert min(seen.values()) >= 30, seen
    # The tool template writes the tools; the default one does not.
    msgs = [{"role": "user", "content": "hello"}]
    assert "get_weather" in ours.render_chat(msgs, tools=TOOLS[:1])
    assert "get_weather" not in ours.render_chat(msgs)


# A vision model's processor files: transformers' AutoProcessor builds a
# LlavaProcessor from them, whose template is the legacy chat_template.json.
PROCESSOR_FILES: dict[str, dict[str, Any]] = {
    "config.json": {"model_type": "llava"},
    "preprocessor_config.json": {
        "processor_class": "LlavaProcessor",
        "image_processor_type": "CLIPImageProcessor",
        "crop_size": {"height": 336, "width": 336},
        "size": {"shortest_edge": 336},
    },
}


@pytest.mark.parametrize(
    ("layout", "files"),
    [
        # chat_template.json (the processor's) renders requests without
        # tools; the tokenizer's chat_template.jinja those with tools.
        ("processor-json-and-jinja", {"json": "template_chatml.jinja", "jinja": "tool_chat_template_hermes.jinja", "processor": True}),
        # Without chat_template.jinja: the config's template serves tools.
        ("processor-json-and-config", {"json": "template_chatml.jinja", "config": "tool_chat_template_hermes.jinja", "processor": True}),
        # No processor: transformers never reads chat_template.json.
        ("json-without-processor", {"json": "template_alpaca.jinja", "jinja": "tool_chat_template_hermes.jinja", "processor": False}),
        # Only the processor has a template: a request with tools has none.
        ("processor-json-only", {"json": "template_chatml.jinja", "processor": True}),
        # processor_config.json's own template beats chat_template.json.
        (
            "processor-config-template",
            {"json": "template_alpaca.jinja", "jinja": "tool_chat_template_hermes.jinja", "processor": True, "processor_config": "template_chatml.jinja"},
        ),
        # A processor file without any processor_class (and a model type
        # without a processor): no processor.
        ("preprocessor-without-class", {"json": "template_chatml.jinja", "jinja": "tool_chat_template_hermes.jinja", "processor": "no-class"}),
        # A processor_class with no processor file: the processor fails to load.
        ("class-without-preprocessor", {"json": "template_chatml.jinja", "jinja": "tool_chat_template_hermes.jinja", "processor": "class-only"}),
        # A chat_template.json that does not parse fails the processor.
        ("malformed-json", {"json": None, "jinja": "tool_chat_template_hermes.jinja", "processor": True}),
    ],
)
def test_a_processors_chat_template_serves_requests_without_tools(workdir: Path, layout: str, files: dict[str, Any]) -> None:
    """vLLM's `resolve_chat_template` tries the processor's template
    (`chat_template.json`, read by AutoProcessor before
    `chat_template.jinja`) only for requests without tools, and transformers'
    tokenizer reads no `chat_template.json`."""
    assert SRC is not None
    templates = REPO_ROOT / "testdata" / "chat-templates"
    d = model_dir(workdir, "bpe", None)
    out = workdir / f"templates-{layout}"
    out.mkdir(exist_ok=True)
    (out / "tokenizer.json").write_bytes((d / "tokenizer.json").read_bytes())
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    if "config" in files:
        cfg["chat_template"] = (templates / files["config"]).read_text()
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    if files["json"] is None:
        (out / "chat_template.json").write_text('{"chat_template": ')
    else:
        (out / "chat_template.json").write_text(json.dumps({"chat_template": (templates / files["json"]).read_text()}))
    if "jinja" in files:
        (out / "chat_template.jinja").write_text((templates / files["jinja"]).read_text())
    if files["processor"] is True:
        for name, content in PROCESSOR_FILES.items():
            (out / name).write_text(json.dumps(content))
    elif files["processor"] == "no-class":
        (out / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        pre = {k: v for k, v in PROCESSOR_FILES["preprocessor_config.json"].items() if k != "processor_class"}
        (out / "preprocessor_config.json").write_text(json.dumps(pre))
    elif files["processor"] == "class-only":
        cfg["processor_class"] = "LlavaProcessor"
        (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    if "processor_config" in files:
        proc = {"processor_class": "LlavaProcessor", "chat_template": (templates / files["processor_config"]).read_text()}
        (out / "processor_config.json").write_text(json.dumps(proc))
    ours = llmd.Tokenizer.from_dir(out)
    vllm = vllm_chat.VllmChat(SRC, out)
    rng = random.Random(zlib.crc32(layout.encode()))
    seen = {"tools": 0, "plain": 0, "refused": 0}
    for i in range(700):
        b = body(rng, True)
        where = f"body {i}: {json.dumps(b)[:1500]}"
        try:
            want = vllm.encode(b)
        except pydantic.ValidationError:  # the request schema only (see above)
            continue
        except Exception:
            with pytest.raises(llmd.InvalidArgumentError):
                ours.encode_openai("/v1/chat/completions", b)
            seen["refused"] += 1
            continue
        assert ours.encode_openai("/v1/chat/completions", b) == want, where
        seen["tools" if b.get("tools") is not None else "plain"] += 1
    assert seen["plain"] >= 30, seen
    if layout == "processor-json-only":
        assert seen["tools"] == 0, seen
        with pytest.raises(llmd.InvalidArgumentError, match="no chat template for requests with tools") as info:
            ours.render_chat([{"role": "user", "content": "hello"}], tools=TOOLS[:1])
        assert getattr(info.value, "code", None) == "chat_template"
    else:
        assert seen["tools"] >= 20, seen


@pytest.mark.skipif(REAL is None, reason="LLMD_REAL_TOKENIZERS is not set (scripts/test-python.sh sets it)")
@pytest.mark.parametrize("model", REAL_MODELS)
def test_real_tokenizers_match(model: str) -> None:
    """A production model's own files: ids equal HF `tokenizers` and
    transformers on random text, and chat bodies equal vLLM's, rendered with
    the model's own template."""
    import tokenizers
    import transformers

    assert SRC is not None and REAL is not None
    d = Path(REAL) / model
    ours = llmd.Tokenizer.from_dir(d)
    ref = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    hf = transformers.AutoTokenizer.from_pretrained(str(d))
    rng = random.Random(zlib.crc32(model.encode()))
    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>"]
    samples = [text(rng) + rng.choice(["", *specials, "  \n\n ", "\t"]) + text(rng) for _ in range(400)]
    samples += ["", " ", "x" * 20000, "日本語のテキスト" * 300, "def f(x):\n    return x  # ünïcödé 🙂\n" * 50]
    for sample in samples:
        for special in (True, False):
            got = ours.encode(sample, add_special_tokens=special)
            assert got == ref.encode(sample, add_special_tokens=special).ids, repr(sample[:200])
            assert got == hf(sample, add_special_tokens=special)["input_ids"], repr(sample[:200])
    vllm = vllm_chat.VllmChat(SRC, d)
    assert ours.content_format == vllm.content_format()
    equal = 0
    for i in range(300):
        b = body(rng, True)
        try:
            want = vllm.encode(b)
        except pydantic.ValidationError:
            continue
        except Exception:
            with pytest.raises(llmd.InvalidArgumentError):
                ours.encode_openai("/v1/chat/completions", b)
            continue
        got = ours.encode_openai("/v1/chat/completions", b)
        assert got == want, f"{model} body {i}: {json.dumps(b, ensure_ascii=False)[:2000]}\nvLLM rendered: {vllm.render(b)!r}"
        equal += 1
    assert equal >= 120


def test_completions_bodies_match_vllm(workdir: Path) -> None:
    """Completions: the prompt through vLLM's TokenizeParams (special tokens
    unless `add_special_tokens: false`, truncation); token ids pass through,
    truncated the same way."""
    assert SRC is not None
    d = model_dir(workdir, "bpe", None)
    ours = llmd.Tokenizer.from_dir(d)
    vllm = vllm_chat.VllmChat(SRC, d)
    rng = random.Random(5)
    for i in range(300):
        prompt = text(rng) + rng.choice(["", "<s>", " </s>"])
        b: dict[str, Any] = {"model": "m", "prompt": prompt}
        if rng.random() < 0.4:
            b["add_special_tokens"] = rng.random() < 0.5
        if rng.random() < 0.4:
            b["truncate_prompt_tokens"] = rng.randint(0, 50)
            if rng.random() < 0.6:
                b["truncation_side"] = rng.choice(["left", "right"])
        want = vllm.tokenize(prompt, b, chat=False)
        assert ours.encode_openai("/v1/completions", b) == want, f"body {i}: {b}"
        ids = list(range(5, 5 + rng.randint(1, 80)))
        b["prompt"] = ids
        want_ids = vllm.v["TokenizeParams"](
            max_total_tokens=None,
            max_output_tokens=None,
            truncate_prompt_tokens=b.get("truncate_prompt_tokens"),
            truncation_side=b.get("truncation_side"),
        ).apply_post_tokenization(vllm.tokenizer, {"prompt_token_ids": ids})["prompt_token_ids"]
        assert ours.encode_openai("/v1/completions", b) == list(want_ids), f"ids body {i}: {b}"
    # -1 (the model's context length, which the router does not know): a
    # prompt that fits the context is kept whole, as vLLM keeps it.
    b = {"model": "m", "prompt": "a b c d", "truncate_prompt_tokens": -1}
    whole = ours.encode_openai("/v1/completions", {"model": "m", "prompt": "a b c d"})
    assert ours.encode_openai("/v1/completions", b) == whole == vllm.tokenize("a b c d", b, chat=False)


def test_chat_template_kwargs_vllm_reserves(workdir: Path) -> None:
    """Names vLLM passes itself: `tokenize: false` renders as without it;
    another `tokenize`, `messages` and `conversation` fail in vLLM and are
    refused here."""
    assert SRC is not None
    d = model_dir(workdir, "bpe", TEMPLATES[0])
    ours = llmd.Tokenizer.from_dir(d)
    vllm = vllm_chat.VllmChat(SRC, d)
    msgs = [{"role": "user", "content": "hello there"}]
    b: dict[str, Any] = {"model": "m", "messages": msgs, "chat_template_kwargs": {"tokenize": False}}
    assert ours.encode_openai("/v1/chat/completions", b) == vllm.encode(b)
    cases: list[tuple[str, Any]] = [("tokenize", True), ("messages", []), ("conversation", 1)]
    for name, value in cases:
        b = {"model": "m", "messages": msgs, "chat_template_kwargs": {name: value}}
        with pytest.raises(Exception):
            vllm.encode(b)
        with pytest.raises(llmd.InvalidArgumentError, match=name):
            ours.encode_openai("/v1/chat/completions", b)


def test_the_engines_chat_settings_match_vllm(workdir: Path) -> None:
    """A server started with `--default-chat-template-kwargs` (Qwen3 with
    thinking off) and one started with `--chat-template`: the same ids as
    vLLM's for bodies that do and do not set the kwargs themselves."""
    assert SRC is not None
    qwen3 = next(t for t in TEMPLATES if t.stem == "qwen3")
    d = model_dir(workdir, "bpe", qwen3)
    server_kwargs: dict[str, Any] = {"enable_thinking": False, "unread": 1, "other": None}
    ours = llmd.Tokenizer.from_dir(d, default_chat_template_kwargs=server_kwargs)
    vllm = vllm_chat.VllmChat(SRC, d, default_chat_template_kwargs=server_kwargs)
    plain = llmd.Tokenizer.from_dir(d)
    msgs = [{"role": "user", "content": "hello there"}]
    bodies: list[dict[str, Any]] = [
        {"model": "m", "messages": msgs},
        {"model": "m", "messages": msgs, "chat_template_kwargs": {"enable_thinking": True}},
        {"model": "m", "messages": msgs, "chat_template_kwargs": {"enable_thinking": None}},
        {"model": "m", "messages": msgs, "reasoning_effort": "high"},
        # Unset values of names the server's defaults or the request's own
        # fields also set.
        {"model": "m", "messages": msgs, "chat_template_kwargs": {"enable_thinking": "auto", "unread": None}},
        {"model": "m", "messages": msgs, "chat_template_kwargs": {"add_generation_prompt": None, "tools": None}},
        {"model": "m", "messages": msgs, "add_generation_prompt": False, "chat_template_kwargs": {"add_generation_prompt": "auto"}},
        {"model": "m", "messages": msgs, "reasoning_effort": "low", "chat_template_kwargs": {"reasoning_effort": None, "other": "auto"}},
    ]
    for b in bodies:
        assert ours.encode_openai("/v1/chat/completions", b) == vllm.encode(b), b
    # The setting changes what the engine sees.
    assert ours.encode_openai("/v1/chat/completions", bodies[0]) != plain.encode_openai("/v1/chat/completions", bodies[0])
    other = next(t for t in TEMPLATES if t.stem == "template_chatml")
    ours = llmd.Tokenizer.from_dir(d, chat_template=str(other))
    vllm = vllm_chat.VllmChat(SRC, d, chat_template=other.read_text())
    for b in bodies:
        assert ours.encode_openai("/v1/chat/completions", b) == vllm.encode(b), b
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.Tokenizer.from_dir(d, default_chat_template_kwargs={"messages": []})


def test_special_tokens_map_of_a_legacy_directory(workdir: Path) -> None:
    """A directory whose config has no `added_tokens_decoder`: transformers
    reads `special_tokens_map.json` too, and its tokens win over the
    config's (a template printing `bos_token` sees the map's)."""
    assert SRC is not None
    tpl = workdir / "bos_first.jinja"
    tpl.write_text("{{ bos_token }}|{{ eos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}")
    d = model_dir(workdir, "bpe", tpl)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "unk_token": "<unk>"}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    (d / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": {"content": "<|im_start|>", "lstrip": False}, "eos_token": "<|im_end|>"})
    )
    ours = llmd.Tokenizer.from_dir(d)
    vllm = vllm_chat.VllmChat(SRC, d)
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "hello there"}]
    b: dict[str, Any] = {"model": "m", "messages": msgs}
    assert vllm.render(b).startswith("<|im_start|>|<|im_end|>|")
    assert ours.render_chat(msgs) == vllm.render(b)
    assert ours.encode_openai("/v1/chat/completions", b) == vllm.encode(b)


def test_a_loop_in_a_comment_does_not_set_the_content_format(workdir: Path) -> None:
    """vLLM detects the format on the parsed template, where comments are
    gone."""
    assert SRC is not None
    tpl = workdir / "commented.jinja"
    tpl.write_text(
        "{# {% for c in message['content'] %}{% endfor %} #}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    d = model_dir(workdir, "bpe", tpl)
    assert llmd.Tokenizer.from_dir(d).content_format == vllm_chat.VllmChat(SRC, d).content_format() == "string"


def test_the_oracle_is_vllms_code() -> None:
    """The oracle really runs the sdist's modules (not stand-ins)."""
    assert SRC is not None
    v = vllm_chat._vllm(SRC)
    assert v["parse_chat_messages"].__code__.co_filename.endswith("vllm/renderers/chat_utils/chat_message.py")
    assert v["safe_apply_chat_template"].__code__.co_filename.endswith("vllm/renderers/hf.py")
    assert (SRC / "PKG-INFO").read_text().splitlines()[2] == f"Version: {vllm_chat.VLLM_VERSION}"
    assert WORDS and REPO_ROOT.is_dir()
