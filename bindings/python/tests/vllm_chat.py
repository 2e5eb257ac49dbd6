"""vLLM's own chat-completions rendering, run from its source distribution.

The parity oracle of `test_vllm_chat.py`. vLLM itself is not installed (it
needs torch and a GPU build); instead the modules that turn an OpenAI chat
body into the engine's token ids are loaded from the unpacked sdist named by
``LLMD_VLLM_SRC`` (the test command downloads ``vllm-0.33.0.tar.gz`` from
PyPI, checks its sha256 and unpacks the files read here):

* ``vllm/renderers/chat_utils/{types,chat_message,chat_template}.py`` and
  ``vllm/exceptions.py``, ``vllm/utils/func_utils.py``: imported as they
  are, with the real ``openai``, ``pydantic`` and ``PIL`` packages;
* from ``vllm/renderers/hf.py`` (which imports torch): the template
  resolution, content-format detection, developer-role rule and
  ``safe_apply_chat_template``, lifted with ``ast`` and executed unchanged;
* from the request models (pydantic classes in a module that imports the
  whole server): ``merge_kwargs``, the tool models and the message
  normalizer, lifted the same way.

Only the multimodal machinery is replaced (a tracker that holds no media):
these tests send text, and a media part fails in vLLM's own parser first.
The glue between those pieces follows ``OnlineRenderer.preprocess_chat``,
``ChatCompletionRequest.build_chat_params`` and ``HfRenderer.render_messages``
line by line (cited below).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

VLLM_VERSION = "0.33.0"


def source_dir() -> Path | None:
    """The unpacked sdist (``.../vllm-0.33.0``), or None when not given."""
    src = os.environ.get("LLMD_VLLM_SRC")
    return Path(src) if src else None


class _Logger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """vLLM's logger adds ``*_once`` methods."""

    def info_once(self, *a: Any, **k: Any) -> None:
        self.debug(*a)

    def warning_once(self, *a: Any, **k: Any) -> None:
        self.debug(*a)

    def debug_once(self, *a: Any, **k: Any) -> None:
        self.debug(*a)


def _init_logger(name: str) -> _Logger:
    return _Logger(logging.getLogger(name), {})


def _module(name: str, path: list[str] | None = None, **attrs: Any) -> types.ModuleType:
    m = types.ModuleType(name)
    if path is not None:
        m.__path__ = path
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


def _lift(path: Path, names: list[str], ns: dict[str, Any], *, cls: str | None = None) -> None:
    """Executes the top-level definitions `names` of `path` (or the methods
    of class `cls`, as plain functions) in `ns`; typing overloads are
    skipped (the implementation follows them)."""
    tree = ast.parse(path.read_text(), str(path))
    body = tree.body
    if cls is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    picked: list[ast.stmt] = []
    for node in body:
        name = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        if name in names and not any(isinstance(d, ast.Name) and d.id == "overload" for d in getattr(node, "decorator_list", [])):
            if cls is not None and isinstance(node, ast.FunctionDef):
                node.decorator_list = []  # model_validator / classmethod
            picked.append(node)
    missing = set(names) - {getattr(n, "name", None) or getattr(getattr(n, "target", None), "id", None) or n.targets[0].id for n in picked}  # type: ignore[attr-defined]
    assert not missing, f"{path}: {sorted(missing)} not found"
    future = ast.parse("from __future__ import annotations").body
    code = compile(ast.Module(body=[*future, *picked], type_ignores=[]), str(path), "exec")
    exec(code, ns)


class _TextOnlyParser:
    def __init__(self, model_config: Any) -> None:
        self.model_config = model_config

    def mm_placeholder_storage(self) -> dict[str, Any]:
        return {}

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"multimodal input ({name}) is outside this oracle")


class _TextOnlyTracker:
    def __init__(self, model_config: Any, media_io_kwargs: Any = None) -> None:
        self.model_config = model_config

    def create_parser(self, mm_processor_kwargs: Any = None) -> _TextOnlyParser:
        return _TextOnlyParser(self.model_config)

    def get_num_items(self, modality: str) -> int:
        return 0

    def resolve_items(self) -> tuple[None, None]:
        return None, None


def _get_processor(
    name: str,
    *,
    processor_cls: Any,
    revision: str | None = None,
    code_revision: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """vLLM's `cached_get_processor` (vllm/transformers_utils/processor.py)
    for a local directory: a `processor_class` that vLLM registers itself
    belongs to models these tests do not use, so it is transformers'
    `AutoProcessor`, and a result that is not a `processor_cls` is refused."""
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
        name, revision=revision, trust_remote_code=trust_remote_code
    )
    if not isinstance(processor, processor_cls):
        raise TypeError(f"{type(processor).__name__} is not a {processor_cls}")
    return processor


class _ModelConfig:
    """The fields of vLLM's ModelConfig the chat path reads, at their
    defaults for a text model."""

    enable_prompt_embeds = False
    multimodal_config = None
    revision = None
    code_revision = None
    tokenizer_revision = None
    trust_remote_code = False
    tokenizer = model = "local"


@lru_cache(maxsize=1)
def _vllm(src: Path) -> dict[str, Any]:
    root = src / "vllm"
    if not (root / "renderers" / "hf.py").is_file():
        raise FileNotFoundError(f"{src} is not an unpacked vllm-{VLLM_VERSION} sdist")
    _module("vllm", [])
    _module("vllm.logger", init_logger=_init_logger)
    _module("vllm.config", ModelConfig=_ModelConfig)
    _module("vllm.inputs", MultiModalDataDict=dict, MultiModalUUIDDict=dict)
    exceptions = _load_file("vllm.exceptions", root / "exceptions.py")
    _module("vllm.utils", [str(root / "utils")])
    func_utils = _load_file("vllm.utils.func_utils", root / "utils" / "func_utils.py")
    _module("vllm.renderers", [str(root / "renderers")])
    _module("vllm.renderers.chat_utils", [str(root / "renderers" / "chat_utils")])
    _module(
        "vllm.renderers.chat_utils.content_parser",
        MODALITY_PLACEHOLDERS_MAP={},
        PROMPT_EMBEDS_PLACEHOLDER_TOKEN="<|vllm-prompt-embeds|>",
        BaseMultiModalContentParser=_TextOnlyParser,
        make_prompt_embeds_placeholder=lambda i: f"<|vllm-prompt-embeds-{i}|>",
    )
    _module(
        "vllm.renderers.chat_utils.item_tracker",
        MultiModalItemTracker=_TextOnlyTracker,
        AsyncMultiModalItemTracker=_TextOnlyTracker,
        BaseMultiModalItemTracker=_TextOnlyTracker,
    )
    chat_types = _load_file("vllm.renderers.chat_utils.types", root / "renderers" / "chat_utils" / "types.py")
    chat_template = _load_file("vllm.renderers.chat_utils.chat_template", root / "renderers" / "chat_utils" / "chat_template.py")
    chat_message = _load_file("vllm.renderers.chat_utils.chat_message", root / "renderers" / "chat_utils" / "chat_message.py")

    import inspect

    import jinja2
    import jinja2.ext
    import jinja2.meta
    import jinja2.nodes
    import jinja2.parser
    import jinja2.sandbox

    import copy
    import itertools
    from collections import defaultdict, deque

    ns: dict[str, Any] = {
        "__name__": "vllm.renderers.hf",
        "Any": Any,
        "copy": copy,
        "itertools": itertools,
        "defaultdict": defaultdict,
        "deque": deque,
        "cast": lambda _t, v: v,
        "inspect": inspect,
        "jinja2": jinja2,
        "lru_cache": lru_cache,
        "logger": _init_logger("vllm.renderers.hf"),
        "supports_kw": func_utils.supports_kw,
        "VLLMValidationError": exceptions.VLLMValidationError,
        "ChatTemplateResolutionError": exceptions.ChatTemplateResolutionError,
        "load_chat_template": chat_template.load_chat_template,
        # The processor's template is vLLM's own code (lifted below) over
        # transformers' AutoProcessor; no predefined fallback template
        # applies (it reads files these tests do not have).
        "cached_get_processor": _get_processor,
        "get_chat_template_fallback_path": lambda **k: None,
    }
    _lift(
        root / "renderers" / "hf.py",
        [
            "_PROCESSOR_CHAT_TEMPLATES",
            "_try_get_processor_chat_template",
            "resolve_chat_template",
            "_is_var_access",
            "_is_attr_access",
            "_is_var_or_elems_access",
            "_attr_dotted_name",
            "_iter_nodes_assign_var_or_elems",
            "_iter_nodes_assign_messages_item",
            "_iter_nodes_assign_content_item",
            "_try_extract_ast",
            "_detect_content_format",
            "_detect_developer_role_support",
            "_convert_developer_to_system",
            "_consolidate_system_messages",
            "_CONTENT_FORMATS_MAXSIZE",
            "_CONTENT_FORMATS",
            "_resolve_chat_template_content_format",
            "resolve_chat_template_content_format",
            "AssistantTracker",
            "_resolve_chat_template_kwargs",
            "_cached_resolve_chat_template_kwargs",
            "_get_hf_base_chat_template_params",
            "resolve_chat_template_kwargs",
            "_template_error_reason",
            "safe_apply_chat_template",
        ],
        ns,
    )
    _lift(root / "renderers" / "params.py", ["merge_kwargs", "map_reasoning_effort"], ns)
    # The prompt's tokenization parameters (truncation, special tokens).
    from dataclasses import dataclass, field
    from typing import Literal, TypeVar, overload

    # A module of its own: dataclasses resolve string annotations through it.
    tok_ns = _module("vllm.renderers.params").__dict__
    tok_ns.update({
        "Any": Any,
        "Literal": Literal,
        "TypeVar": TypeVar,
        "cast": lambda _t, v: v,
        "overload": overload,
        "dataclass": dataclass,
        "field": field,
        "VLLMValidationError": exceptions.VLLMValidationError,
        "logger": _init_logger("vllm.renderers.params"),
    })
    _lift(root / "renderers" / "params.py", ["_S", "_PARALLEL_TO_PROMPT_TOKENS", "TokenizeParams"], tok_ns)
    ns["TokenizeParams"] = tok_ns["TokenizeParams"]

    from typing import ClassVar, Literal

    from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

    models: dict[str, Any] = {
        "Any": Any,
        "ClassVar": ClassVar,
        "Literal": Literal,
        "BaseModel": BaseModel,
        "ConfigDict": ConfigDict,
        "model_serializer": model_serializer,
        "model_validator": model_validator,
        "logger": _init_logger("vllm.protocol"),
    }
    ep = root / "entrypoints"
    _lift(ep / "serve" / "engine" / "protocol.py", ["_REMOVED_GUIDED_FIELDS", "OpenAIBaseModel"], models)
    _lift(ep / "generate" / "base" / "protocol.py", ["FunctionDefinition"], models)
    _lift(ep / "openai" / "chat_completion" / "protocol.py", ["ChatCompletionToolsParam"], models)
    for m in ("OpenAIBaseModel", "FunctionDefinition", "ChatCompletionToolsParam"):
        models[m].model_rebuild(_types_namespace=models)
    _lift(ep / "openai" / "chat_completion" / "protocol.py", ["_normalize_messages_before"], models, cls="ChatCompletionRequest")

    from pydantic import TypeAdapter

    ns["tools_model"] = models["ChatCompletionToolsParam"]
    ns["normalize_request"] = models["_normalize_messages_before"]
    ns["messages_adapter"] = TypeAdapter(list[chat_types.ChatCompletionMessageParam])  # type: ignore[name-defined]
    ns["parse_chat_messages"] = chat_message.parse_chat_messages
    return ns


class VllmChat:
    """vLLM 0.33.0 serving chat completions for one model directory
    (transformers' tokenizer from the same files, as vLLM loads it)."""

    def __init__(
        self,
        src: Path,
        model_dir: Path,
        *,
        default_chat_template_kwargs: dict[str, Any] | None = None,
        chat_template: str | None = None,
    ) -> None:
        """``default_chat_template_kwargs`` and ``chat_template``: the
        server's ``--default-chat-template-kwargs`` and ``--chat-template``
        (already loaded)."""
        import transformers

        self.v = _vllm(src)
        # As vLLM loads a generative model's tokenizer
        # (vllm/tokenizers/registry.py: `truncation_side="left"` for the
        # generate and draft runners, over what the files say).
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), truncation_side="left")
        self.model_config = _ModelConfig()
        self.server_kwargs = default_chat_template_kwargs
        self.chat_template = chat_template

    def render(self, body: dict[str, Any]) -> str:
        """The prompt vLLM builds for a chat body (raises what vLLM raises)."""
        v = self.v
        # ChatCompletionRequest.check_tool_usage (protocol.py), a request
        # validator the harness does not run: an empty tools list is refused.
        if body.get("tools") == []:
            raise ValueError("`tools` must not be an empty array.")
        body = v["normalize_request"](None, {k: val for k, val in body.items()})
        messages = v["messages_adapter"].validate_python(body["messages"])
        messages = [dict(m) if isinstance(m, dict) else m for m in messages]
        for m in messages:  # ChatCompletionRequest._materialize_tool_calls_after
            if isinstance(m, dict) and m.get("tool_calls") is not None and not isinstance(m["tool_calls"], list):
                m["tool_calls"] = list(m["tool_calls"])
        tools = body.get("tools")
        # OnlineRenderer.render_chat: tool_dicts (exclude_tools_when_tool_choice_none is off by default).
        tool_dicts = None if tools is None else [v["tools_model"].model_validate(t).model_dump() for t in tools]
        merge = v["merge_kwargs"]
        # OnlineRenderer.preprocess_chat: default_template_kwargs (HF tokenizer, no prompt embeds).
        defaults = merge(self.server_kwargs, dict(tools=tool_dicts, tokenize=False))
        # ChatCompletionRequest.build_chat_params (no reasoning_effort_map by default).
        effort = v["map_reasoning_effort"](body.get("reasoning_effort"), None)
        extra: dict[str, Any] = dict(
            add_generation_prompt=body.get("add_generation_prompt", True),
            continue_final_message=body.get("continue_final_message", False),
            documents=body.get("documents"),
            reasoning_effort=effort,
        )
        user_kwargs = body.get("chat_template_kwargs") or {}
        if effort is not None and "enable_thinking" not in user_kwargs:
            extra["enable_thinking"] = effort != "none"
        kwargs = merge(body.get("chat_template_kwargs"), extra)
        # ChatParams.with_defaults, then get_apply_chat_template_kwargs.
        kwargs = merge(defaults, kwargs)
        # ChatParams.chat_template: the request's (not sent here) or the server's.
        kwargs = merge(kwargs, dict(chat_template=self.chat_template, return_dict=False))
        # HfRenderer.render_messages.
        fmt = v["resolve_chat_template_content_format"](
            chat_template=self.chat_template,
            tools=kwargs.get("tools"),
            given_format="auto",
            tokenizer=self.tokenizer,
            model_config=self.model_config,
        )
        conversation, _, _ = v["parse_chat_messages"](messages, self.model_config, content_format=fmt)
        out = v["safe_apply_chat_template"](self.model_config, self.tokenizer, conversation, **kwargs)
        assert isinstance(out, str)
        return out

    def encode(self, body: dict[str, Any]) -> list[int]:
        """The engine's ids: the rendered prompt through vLLM's
        ``TokenizeParams`` as ``ChatCompletionRequest.build_tok_params``
        fills it (``add_special_tokens``, default False for chat;
        ``truncate_prompt_tokens``, ``truncation_side``; the model's context
        length unknown here) and ``BaseRenderer._tokenize_singleton_prompt``."""
        return self.tokenize(self.render(body), body, chat=True)

    def tokenize(self, text: str, body: dict[str, Any], *, chat: bool) -> list[int]:
        params = self.v["TokenizeParams"](
            max_total_tokens=None,
            max_output_tokens=None,
            truncate_prompt_tokens=body.get("truncate_prompt_tokens"),
            truncation_side=body.get("truncation_side"),
            add_special_tokens=bool(body.get("add_special_tokens", not chat)),
        )
        prompt = params.apply_pre_tokenization(self.tokenizer, {"prompt": text})
        ids = self.tokenizer(prompt["prompt"], **params.get_encode_kwargs())["input_ids"]
        out = params.apply_post_tokenization(self.tokenizer, {"prompt_token_ids": list(ids)})
        return [int(i) for i in out["prompt_token_ids"]]

    def content_format(self) -> str:
        return str(
            self.v["resolve_chat_template_content_format"](
                chat_template=None, tools=None, given_format="auto", tokenizer=self.tokenizer, model_config=self.model_config
            )
        )
