"""``llmd.Tokenizer`` against HF's own Python stack on the same files:
``tokenizers`` for ids and transformers' ``apply_chat_template`` (jinja2) for
chat rendering, over real chat templates vLLM 0.33.0 ships
(testdata/chat-templates) and thousands of random conversations. The
tokenizers are trained here with the ``tokenizers`` library: byte-level BPE
and a SentencePiece-style Unigram."""

from __future__ import annotations

import collections.abc
import json
import random
import zlib
from pathlib import Path
from typing import Any, cast

import pytest
import tokenizers
import transformers
from conftest import REPO_ROOT
from kv_events import batch, stored

import llmd

TEMPLATES = sorted((REPO_ROOT / "testdata" / "chat-templates").glob("*.jinja"))
SPECIALS = ["<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "[INST]", "[/INST]"]
WORDS = [
    "hello", "world", "naïve", "café", "日本語", "emoji🙂", "tab\there", "new\nline", "  spaced  ", "quote\"s",
    "back\\slash", "<tag>", "{json}", "ünïcödé", "the", "a", "of", "42", "3.14", "-", "'single'", "ß", "Ωmega",
]


def corpus() -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(400)]


def train(kind: str, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    trainer: Any
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=600, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
    else:
        # "unigram-first": Metaspace prepends only to the first split, the
        # case where where a cut lands matters.
        scheme = "first" if kind == "unigram-first" else "always"
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=scheme)
        tok.decoder = decoders.Metaspace(prepend_scheme=scheme)
        trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIALS, unk_token="<unk>")
    tok.train_from_iterator(corpus(), trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    tok.save(str(out / "tokenizer.json"))


def model_dir(tmp: Path, kind: str, template: Path | None) -> Path:
    d = tmp / f"{kind}-{template.stem if template else 'none'}"
    d.mkdir(parents=True, exist_ok=True)
    train(kind, d)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    if template is not None:
        (d / "chat_template.jinja").write_text(template.read_text())
    return d


def text(rng: random.Random) -> str:
    n = rng.choice([0, 1, 3, 10, 40, 200])
    return " ".join(rng.choice(WORDS) for _ in range(n)) + rng.choice(["", " ", "\n", "  "])


TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "noop", "description": None, "parameters": None}},
]


def conversation(rng: random.Random, tools: bool) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": text(rng)})
    for turn in range(rng.randint(1, 4)):
        msgs.append({"role": "user", "content": text(rng)})
        if turn < 3 and rng.random() < 0.7:
            if tools and rng.random() < 0.3:
                # The key order vLLM's request model gives a tool call.
                call = {"id": f"call{turn}", "function": {"arguments": {"city": rng.choice(WORDS)}, "name": "get_weather"}, "type": "function"}
                msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
                msgs.append({"role": "tool", "tool_call_id": f"call{turn}", "content": text(rng)})
                msgs.append({"role": "assistant", "content": text(rng)})
            else:
                msgs.append({"role": "assistant", "content": text(rng)})
    if msgs[-1]["role"] == "assistant":
        msgs.append({"role": "user", "content": text(rng)})
    return msgs


def request_form(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as a client sends them: tool-call arguments as JSON
    text (vLLM parses them into the mapping templates receive)."""
    out = []
    for m in msgs:
        m = dict(m)
        if "tool_calls" in m:
            m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}} for c in m["tool_calls"]]
        out.append(m)
    return out


def openai_form(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What vLLM hands an "openai"-format template: text parts (tool
    messages keep joined strings)."""
    out = []
    for m in msgs:
        m = dict(m)
        if m["role"] != "tool":
            m["content"] = [{"type": "text", "text": m["content"]}]
        out.append(m)
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tok")


@pytest.mark.parametrize("kind", ["bpe", "unigram", "unigram-first"])
def test_encode_matches_hf_tokenizers(kind: str, workdir: Path) -> None:
    d = model_dir(workdir, kind, None)
    ours = llmd.Tokenizer.from_dir(d)
    ref = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    rng = random.Random(11)
    samples = corpus() + [text(rng) for _ in range(300)] + ["", " ", "<s>hi</s>", "<|im_start|>user\nx<|im_end|>", "x" * 5000]
    for s in samples:
        for special in (True, False):
            assert ours.encode(s, add_special_tokens=special) == ref.encode(s, add_special_tokens=special).ids, repr(s)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_chat_matches_transformers(template: Path, workdir: Path) -> None:
    d = model_dir(workdir, "bpe", template)
    ours = llmd.Tokenizer.from_dir(d)
    hf = transformers.AutoTokenizer.from_pretrained(str(d))
    with_tools = template.stem.startswith("tool_")
    rng = random.Random(zlib.crc32(template.stem.encode()))
    checked = 0
    for i in range(120):
        msgs = conversation(rng, with_tools)
        tools = TOOLS if with_tools and rng.random() < 0.6 else None
        add = rng.random() < 0.8
        fed = openai_form(msgs) if ours.content_format == "openai" else msgs
        try:
            want = hf.apply_chat_template(fed, tools=cast(Any, tools), add_generation_prompt=add, tokenize=False)
        except Exception as e:  # the template refuses this conversation: so must we
            with pytest.raises(llmd.InvalidArgumentError):
                ours.render_chat(request_form(msgs), tools=tools, add_generation_prompt=add)
            assert e is not None
            continue
        got = ours.render_chat(request_form(msgs), tools=tools, add_generation_prompt=add)
        assert got == want, f"{template.stem} conversation {i}:\n{json.dumps(msgs)}"
        ids = hf(want, add_special_tokens=False)["input_ids"]
        assert ours.encode_chat(request_form(msgs), tools=tools, add_generation_prompt=add) == ids
        checked += 1
    # Some templates refuse conversations (Mistral's strict role
    # alternation refuses most with tool turns): enough must still render
    # for the comparison to mean something.
    assert checked >= 25, f"only {checked} conversations rendered"


def test_template_token_variables_match_transformers(workdir: Path) -> None:
    """The template sees the tokens transformers 5 gives it: the named ones
    and the model-specific `*_token` keys with string values (also from a
    dict-valued `extra_special_tokens`; an object value is not taken), not
    the list of additional special tokens."""
    d = model_dir(workdir, "bpe", None)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.update(
        {
            "image_token": "<image>",
            "boi_token": {"content": "<boi>", "special": True},
            "extra_special_tokens": {"audio_token": "<audio>"},
            "additional_special_tokens": ["<x>"],
            "add_bos_token": False,
        }
    )
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    (d / "chat_template.jinja").write_text(
        "{{ bos_token }}|{{ image_token }}|{{ boi_token }}|{{ audio_token }}|"
        "{{ additional_special_tokens is defined }}|{{ add_bos_token is defined }}"
        "{% for m in messages %}|{{ m.content }}{% endfor %}"
    )
    ours = llmd.Tokenizer.from_dir(d)
    hf = transformers.AutoTokenizer.from_pretrained(str(d))
    msgs = [{"role": "user", "content": "hi"}]
    want = hf.apply_chat_template(msgs, tokenize=False)
    assert isinstance(want, str)
    assert want.startswith("<s>|<image>||<audio>|") and want.endswith("|hi")
    assert ours.render_chat(msgs) == want


def test_vllm_rules_and_errors(workdir: Path) -> None:
    d = model_dir(workdir, "bpe", REPO_ROOT / "testdata" / "chat-templates" / "template_chatml.jinja")
    tok = llmd.Tokenizer.from_dir(d)
    assert tok.content_format == "string"
    # List content is flattened with "\n"; null content is "".
    parts: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, {"role": "assistant", "content": None}]
    assert tok.render_chat(parts, add_generation_prompt=False) == "<|im_start|>user\na\nb<|im_end|>\n<|im_start|>assistant\n"
    # A developer message becomes system when the template has no 'developer'.
    dev = [{"role": "user", "content": "u"}, {"role": "developer", "content": "d"}]
    assert tok.render_chat(dev).startswith("<|im_start|>system\nd<|im_end|>\n<|im_start|>user\nu")
    # continue_final_message leaves the last message open.
    cont = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "The answer is"}]
    assert tok.render_chat(cont, add_generation_prompt=False, continue_final_message=True).endswith("The answer is")
    with pytest.raises(llmd.InvalidArgumentError) as info:
        tok.render_chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    assert info.value.code == "request" and "image_url" in str(info.value)
    with pytest.raises(llmd.InvalidArgumentError) as info:
        llmd.Tokenizer.from_dir(workdir / "missing")
    assert info.value.code == "tokenizer_file" and "tokenizer.json" in str(info.value)
    plain = llmd.Tokenizer.from_dir(model_dir(workdir, "unigram", None))
    assert plain.chat_template is None
    with pytest.raises(llmd.InvalidArgumentError) as info:
        plain.render_chat([{"role": "user", "content": "x"}])
    assert info.value.code == "chat_template"
    # A valid body whose engine ids cannot be computed here is "not_exact",
    # apart from a malformed one ("request").
    own = {"messages": [{"role": "user", "content": "x"}], "chat_template": "{{ 1 }}"}
    with pytest.raises(llmd.InvalidArgumentError) as info:
        tok.encode_openai("/v1/chat/completions", own)
    assert info.value.code == "not_exact" and "chat_template" in str(info.value)
    with pytest.raises(llmd.InvalidArgumentError) as info:
        tok.encode_openai("/v1/chat/completions", {"messages": "x"})
    assert info.value.code == "request"
    # A media chat is valid and estimated, not malformed.
    media = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}
    with pytest.raises(llmd.InvalidArgumentError) as info:
        tok.encode_openai("/v1/chat/completions", media)
    assert info.value.code == "not_exact"

    # Only what json.dumps raises for an unwritable value is an argument
    # error; an interrupt raised while the body is read goes on as it is.
    class Interrupting(collections.abc.Mapping):  # type: ignore[type-arg]
        def __getitem__(self, k: object) -> object:
            raise KeyboardInterrupt

        def __iter__(self):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

        def __len__(self) -> int:
            return 1

    with pytest.raises(KeyboardInterrupt):
        tok.encode_openai("/v1/completions", {"model": "m", "prompt": Interrupting()})
    # A decode body's forwarded prompt ids are the engine's prompt.
    fwd = {"messages": [{"role": "user", "content": "x"}], "kv_transfer_params": {"prompt_token_ids": [3, 2, 1]}}
    assert tok.encode_openai("/v1/chat/completions", fwd) == [3, 2, 1]


def test_pick_openai_routes_on_the_engines_ids(workdir: Path) -> None:
    tok = llmd.Tokenizer.from_dir(model_dir(workdir, "bpe", REPO_ROOT / "testdata" / "chat-templates" / "template_chatml.jinja"))
    sched = llmd.Scheduler(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n"
        "  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n",
        seed=1,
    )
    for i, n in enumerate(["a", "b", "c"]):
        sched.add_endpoint(n, f"10.0.0.{i + 1}:8000")
    rng = random.Random(5)
    messages = [{"role": "system", "content": text(rng) + " " + text(rng)}, {"role": "user", "content": " ".join(WORDS * 4)}]
    body = {"model": "m", "messages": messages, "max_tokens": 5}
    ids = tok.encode_chat(messages)
    full = len(ids) // 16 * 16
    sched.ingest_kv_events("b", batch([stored(list(range(1, full // 16 + 1)), ids[:full])]))
    d = sched.pick_openai("/v1/chat/completions", body)
    assert any("estimated from text" in n for n in d.explain()["notes"])
    sched.on_error(d.request_id, "cancelled")
    sched.set_tokenizer("m", tok)
    for raw in (body, json.dumps(body), json.dumps(body).encode()):
        d = sched.pick_openai("/v1/chat/completions", raw, headers={"x-session-id": "s1"})
        assert d.target is not None and d.target["name"] == "b"
        notes = d.explain()["notes"]
        assert any(f"best consecutive match {full // 16} blocks" in n for n in notes), notes
        sched.on_error(d.request_id, "cancelled")
    d = sched.pick_openai("/v1/completions", {"model": "m", "prompt": "hello world"}, request_id="c1")
    assert d.request_id == "c1"
    sched.on_error("c1", "cancelled")
    with pytest.raises(llmd.InvalidArgumentError) as info:
        sched.pick_openai("/v1/chat/completions", {"model": "m", "messages": "nope"})
    assert "'messages'" in str(info.value)


@pytest.mark.parametrize("kind", ["bpe", "unigram", "unigram-first"])
@pytest.mark.parametrize(
    "template", [t for t in TEMPLATES if t.stem in ("template_chatml", "qwen3", "tool_chat_template_hermes", "tool_chat_template_llama3.1_json")],
    ids=lambda p: p.stem,
)
def test_sessions_give_the_full_tokenization(kind: str, template: Path, workdir: Path) -> None:
    tok = llmd.Tokenizer.from_dir(model_dir(workdir, kind, template))
    rng = random.Random(zlib.crc32((kind + template.stem).encode()))
    reused_some = False
    for _ in range(25):
        session = tok.session()
        convo: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            convo.append({"role": "system", "content": text(rng)})
        for _turn in range(6):
            convo.append({"role": "user", "content": text(rng)})
            try:
                full = tok.encode_chat(convo)
            except llmd.InvalidArgumentError:
                break
            assert session.encode_chat(convo) == full
            reused_some |= session.last_reused_tokens > 0
            convo.append({"role": "assistant", "content": text(rng)})
    assert reused_some


def test_a_config_names_the_tokenizer_directory() -> None:
    tiny = REPO_ROOT / "testdata" / "tokenizers" / "tiny"
    config = (
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        f"- type: token-producer\n  parameters: {{modelName: m, tokenizerDir: '{tiny}'}}\n"
        "- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n"
        "  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n"
    )
    sched = llmd.Scheduler(config)
    sched.add_endpoint("a", "10.0.0.1:8000")
    d = sched.pick_openai("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "w1 w2"}]})
    assert d.explain()["prompt_tokens"] == 7
    assert not any("estimated from text" in n for n in d.explain()["notes"])
    with pytest.raises(llmd.ConfigError) as info:
        llmd.Scheduler(config.replace(str(tiny), "/nonexistent"))
    assert "tokenizerDir" in str(info.value) and "/nonexistent" in str(info.value)


def train_llama2(out: Path) -> None:
    """A tokenizer.json shaped as Llama 2's: SentencePiece-style BPE with
    byte fallback, `▁` prepended and spaces replaced by the normalizer."""
    from tokenizers import Tokenizer, models, normalizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus(), trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    tok.save(str(out / "tokenizer.json"))


@pytest.mark.parametrize("cls", ["LlamaTokenizerFast", "CodeLlamaTokenizer"])
def test_classes_transformers_rebuilds_are_refused(workdir: Path, cls: str) -> None:
    """`LlamaTokenizer` and `CodeLlamaTokenizer` build a pipeline of their
    own from tokenizer.json's vocabulary (transformers 5); they are refused
    exactly where AutoTokenizer builds them, and for every model type whose
    tokenizer transformers maps to a generic backend (tokenizer.json as it
    is) the directory loads with transformers' ids."""
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    d = workdir / f"llama2-{cls}"
    d.mkdir(exist_ok=True)
    train_llama2(d)
    cfg = {"tokenizer_class": cls, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    texts = ["hello world", "  the naïve café\n", "<s> after a special token", "a <s>b</s> c", "ünïcödé 42 3.14"]
    backends = {"TokenizersBackend", "PythonBackend", "PreTrainedTokenizerFast", "MistralCommonBackend"}
    generic = sorted(k for k, v in TOKENIZER_MAPPING_NAMES.items() if v and v.removesuffix("Fast") in backends)
    outcomes: dict[str, list[str]] = {"refused": [], "equal": []}
    for model_type in ["", "llama", "code_llama", "yi", *generic]:
        cfg_file = d / "config.json"
        cfg_file.unlink(missing_ok=True)
        if model_type:
            cfg_file.write_text(json.dumps({"model_type": model_type}))
        hf = transformers.AutoTokenizer.from_pretrained(str(d))
        name = type(hf).__name__
        try:
            ours = llmd.Tokenizer.from_dir(d)
        except llmd.InvalidArgumentError as e:
            assert name in ("LlamaTokenizer", "CodeLlamaTokenizer"), f"{model_type}: refused, transformers uses {name}"
            assert getattr(e, "code", None) == "tokenizer_file" and "rebuilds" in str(e)
            outcomes["refused"].append(model_type)
            continue
        assert name not in ("LlamaTokenizer", "CodeLlamaTokenizer"), f"{model_type}: transformers rebuilds with {name}"
        for t in texts:
            assert ours.encode(t) == hf.encode(t), (model_type, t)
        outcomes["equal"].append(model_type)
    assert outcomes["refused"] == ["", "llama", "code_llama", "yi"], outcomes
    assert outcomes["equal"] == generic
    # Why: the rebuilt pipeline gives other ids on these very files.
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    rebuilt = transformers.AutoTokenizer.from_pretrained(str(d))
    raw = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    assert any(rebuilt.encode(t) != raw.encode(t).ids for t in texts)
