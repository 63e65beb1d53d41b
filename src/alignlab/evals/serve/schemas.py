"""Request schemas of `alignlab serve` (pydantic, strict: a wrong-typed field is a 400, never coerced).

Fields follow the OpenAI API reference (https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/api-reference/completions/create). A field the server does not
know is refused as OpenAI does ("Unrecognized request argument supplied"); a known field it cannot
honour (tools, response formats, penalties, ...) is refused with a 400 naming it unless it has its
neutral value, so a client never gets an answer that silently ignored what it asked for. Accepted
without effect: `user`, `metadata`, `store`, `service_tier`, `parallel_tool_calls` (no tools here).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

MAX_CHOICES = 64
"""At most this many sequences per request (prompts x n)."""
MAX_STOP = 16
MAX_TOP_LOGPROBS = 20

_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []), "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}), "presence_penalty": (None, 0), "frequency_penalty": (None, 0),
    "logit_bias": (None, {}), "modalities": (None, ["text"]), "audio": (None,), "prediction": (None,),
    "reasoning_effort": (None,), "web_search_options": (None,), "suffix": (None, ""),
}
_WHAT = {
    "tools": "tool calling", "tool_choice": "tool calling", "functions": "function calling",
    "function_call": "function calling", "response_format": "response formats other than {\"type\": \"text\"}",
    "presence_penalty": "presence penalties", "frequency_penalty": "frequency penalties", "logit_bias": "logit biases",
    "modalities": "output modalities other than text", "audio": "audio output", "prediction": "predicted outputs",
    "reasoning_effort": "reasoning effort", "web_search_options": "web search", "suffix": "suffixes (insertion)",
}
_UNION_HINTS = {
    "prompt": "must be a string, a list of strings, a list of token ids or a list of lists of token ids",
    "stop": "must be a string or a list of strings",
    "content": 'must be a string or a list of {"type": "text", "text": ...} parts (only text content is supported)',
}


def _neutral(name: str, value: Any) -> bool:
    for v in _NEUTRAL[name]:
        if v is None or isinstance(v, (list, dict, str)):
            if value == v and type(value) is type(v):
                return True
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == v:
            return True
    return False


def _refuse(value: Any, info: ValidationInfo) -> Any:
    name = info.field_name or "?"
    if _neutral(name, value):
        return None
    raise ValueError(f"'{name}' is not supported by alignlab serve (no {_WHAT[name]}); remove it or send its "
                     "default")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    refusal: str | None = None

    def as_dict(self) -> dict[str, str]:
        """{'role', 'content'} as the chat template takes it ('developer' is the newer name for 'system')."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(_Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class _Common(_Strict):
    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=MAX_CHOICES)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2 ** 63), lt=2 ** 64)
    user: str | None = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    logit_bias: Any = None

    _refused = field_validator("presence_penalty", "frequency_penalty", "logit_bias")(_refuse)

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is None:
            return None
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops

    @model_validator(mode="after")
    def _stream_options(self) -> "_Common":
        if self.stream_options is not None and not self.stream:
            raise ValueError("'stream_options' is only allowed with stream=true")
        return self

    @property
    def choices(self) -> int:
        return self.n or 1


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: Any = None
    modalities: Any = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    web_search_options: Any = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None

    _refused_chat = field_validator("tools", "tool_choice", "functions", "function_call", "response_format",
                                    "modalities", "audio", "prediction", "reasoning_effort",
                                    "web_search_options")(_refuse)

    @model_validator(mode="after")
    def _logprobs(self) -> "ChatRequest":
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("'top_logprobs' needs 'logprobs': true")
        return self

    @property
    def limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=0)
    echo: bool | None = None
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    best_of: int | None = None
    suffix: Any = None

    _refused_completion = field_validator("suffix")(_refuse)

    @field_validator("best_of")
    @classmethod
    def _best_of(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value != (info.data.get("n") or 1):
            raise ValueError("'best_of' other than n is not supported by alignlab serve (no server-side ranking)")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else value
        if not items or any(len(p) == 0 for p in items):
            raise ValueError("the prompt must not be empty")
        return value

    def prompts(self) -> list[str | list[int]]:
        p = self.prompt
        return [p] if isinstance(p, str) or (p and isinstance(p[0], int)) else list(p)  # type: ignore[list-item]


def _param(loc: tuple[Any, ...]) -> str:
    """'messages[0].content' from a pydantic location (cut after a union field: its members' names follow)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        if part in _UNION_HINTS:
            break
    return out


def describe(exc: ValidationError) -> tuple[str, str | None]:
    """(message, param) of the OpenAI-style 400 answer to a request that failed validation."""
    errors = exc.errors()
    extra = [e for e in errors if e["type"] == "extra_forbidden" and not _UNION_HINTS.keys() & set(e["loc"])]
    if extra:
        param = _param(extra[0]["loc"])
        return f"Unrecognized request argument supplied: {param}", param
    err = errors[0]
    if err["type"] == "json_invalid":
        return f"the request body is not valid JSON ({err['msg']})", None
    if not err["loc"]:
        msg = "the request body must be a JSON object" if err["type"] in ("model_type", "dict_type") else err["msg"]
        return msg.removeprefix("Value error, "), None
    param = _param(err["loc"])
    last = next((p for p in reversed(err["loc"]) if isinstance(p, str) and p in _UNION_HINTS), None)
    if err["type"] == "missing":
        return f"'{param}' is required", param
    if last is not None and err["type"] != "value_error":
        return f"Invalid value for '{param}': {_UNION_HINTS[last]}", param
    msg = err["msg"].removeprefix("Value error, ")
    return (msg if msg.startswith(f"'{param}'") else f"Invalid value for '{param}': {msg}"), param
