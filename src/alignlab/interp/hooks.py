"""Named hook points on the residual stream of any Hugging Face causal LM, and hooks that remove themselves
(the hook-point naming of TransformerLens, Nanda and Bloom 2022, and the scoped edits of nnsight, Fiotto-Kaufman
et al. 2024, arXiv:2407.14561).

Hook points, per decoder layer L (0-based): `resid_pre.L` (the layer's input), `resid_post.L` (its output, the
residual stream after the layer), `attn_out.L` and `mlp_out.L` (what the attention and MLP blocks add). `hooks()`
registers plain PyTorch forward hooks for the duration of a `with` block and removes every one of them on exit,
exceptions included; `capture()` records activations the same way.

Why not only nnsight or TransformerLens: both read and edit activations well inside their own tracing or
`run_with_hooks` calls (nnsight's reads are checked against ours in tests/interp/test_hooks.py and timed in
benchmarks/bench_steering.py; `capture_nnsight` below is that reference). A steering vector must instead stay
applied across calls that neither library makes: alignlab's generation paths run the model's forward themselves,
one prefill and one decode step at a time on KV caches of their own (lm/prefix_cache.py, lm/continuous.py, the
server's engine). Plain forward hooks fire on every one of those forwards whatever calls them, so they are the
mechanism here; sparse autoencoders and probes read through the same hook points.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any, Callable, Iterator, Sequence

KINDS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
"""The hook-point kinds; a hook point is `KIND.LAYER`."""
_POINT_RE = re.compile(r"^(resid_pre|resid_post|attn_out|mlp_out)\.(\d+)$")
_LAYER_PATHS = ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers", "transformer.layers",
                "layers")
_ATTN = ("self_attn", "attn", "attention", "self_attention")
_MLP = ("mlp", "feed_forward", "ffn")

Edit = Callable[[Any], Any]
"""A hook function: the activation tensor [batch, positions, d_model] in; a replacement tensor or None (keep)."""


class HookPointError(ValueError):
    """A hook point the model does not have (the message names the valid ones)."""


def _attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_layers(model: Any) -> Any:
    """The model's list of decoder layers (Llama, Mistral, Qwen, GPT-2, GPT-NeoX, ...): a known attribute path, else
    the ModuleList whose length is the config's `num_hidden_layers`. Wrappers with a `base` model are unwrapped."""
    import torch

    model = getattr(model, "base_lm", model)
    for path in _LAYER_PATHS:
        found = _attr_path(model, path)
        if isinstance(found, torch.nn.ModuleList) and len(found):
            return found
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for _, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n:
            return mod
    raise HookPointError(f"cannot find the decoder layers of {type(model).__name__} (looked for "
                         f"{', '.join(_LAYER_PATHS)} and a ModuleList of num_hidden_layers modules)")


def n_layers(model: Any) -> int:
    return len(decoder_layers(model))


def hook_points(model: Any) -> list[str]:
    """Every hook point of `model`, layer by layer."""
    return [f"{kind}.{i}" for i in range(n_layers(model)) for kind in KINDS]


def parse_point(point: str, layers: int | None = None) -> tuple[str, int]:
    """(kind, layer) of a hook point name; HookPointError naming the valid forms."""
    match = _POINT_RE.match(point.strip()) if isinstance(point, str) else None
    if not match:
        raise HookPointError(f"unknown hook point {point!r}; valid: KIND.LAYER with KIND one of {', '.join(KINDS)} "
                             f"and LAYER from 0{'' if layers is None else f' to {layers - 1}'}, e.g. resid_post.5")
    kind, layer = match.group(1), int(match.group(2))
    if layers is not None and layer >= layers:
        raise HookPointError(f"hook point {point!r}: the model has {layers} layers (0 to {layers - 1})")
    return kind, layer


def module_for(model: Any, point: str) -> tuple[Any, bool]:
    """(module, is_pre) whose forward (pre-)hook is `point`."""
    layers = decoder_layers(model)
    kind, i = parse_point(point, len(layers))
    layer = layers[i]
    if kind in ("resid_pre", "resid_post"):
        return layer, kind == "resid_pre"
    names = _ATTN if kind == "attn_out" else _MLP
    for name in names:
        sub = getattr(layer, name, None)
        if sub is not None:
            return sub, False
    raise HookPointError(f"hook point {point!r}: layer {i} ({type(layer).__name__}) has none of {', '.join(names)}")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _replace_first(value: Any, new: Any) -> Any:
    return (new, *value[1:]) if isinstance(value, tuple) else new


def _make_hook(edit: Edit, is_pre: bool, thread: int | None) -> Callable[..., Any]:
    if is_pre:
        def pre(module: Any, args: tuple, kwargs: dict) -> Any:
            if thread is not None and threading.get_ident() != thread:
                return None
            if args:
                new = edit(args[0])
                return None if new is None else ((new, *args[1:]), kwargs)
            if "hidden_states" in kwargs:
                new = edit(kwargs["hidden_states"])
                return None if new is None else (args, {**kwargs, "hidden_states": new})
            return None
        return pre

    def post(module: Any, args: tuple, output: Any) -> Any:
        if thread is not None and threading.get_ident() != thread:
            return None
        new = edit(_first(output))
        return None if new is None else _replace_first(output, new)
    return post


@contextlib.contextmanager
def hooks(model: Any, edits: dict[str, Edit] | Sequence[tuple[str, Edit]],
          this_thread_only: bool = False) -> Iterator[list[Any]]:
    """Register `edits` (hook point -> function) on `model` for the `with` block; every hook is removed on exit,
    whatever happens inside. `this_thread_only`: the hooks act only on forwards run by the thread that entered
    the block (another thread sharing the model, e.g. an unsteered model of the same weights, is untouched)."""
    items = list(edits.items()) if isinstance(edits, dict) else list(edits)
    resolved = [(module_for(model, point), edit) for point, edit in items]  # errors before anything is registered
    thread = threading.get_ident() if this_thread_only else None
    handles: list[Any] = []
    try:
        for (module, is_pre), edit in resolved:
            fn = _make_hook(edit, is_pre, thread)
            handles.append(module.register_forward_pre_hook(fn, with_kwargs=True) if is_pre
                           else module.register_forward_hook(fn))
        yield handles
    finally:
        for h in handles:
            h.remove()


def active_hooks(model: Any) -> int:
    """How many forward and pre-forward hooks are registered anywhere in `model` (for tests: 0 after a block)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@contextlib.contextmanager
def capture(model: Any, points: Sequence[str], keep: Callable[[Any], Any] | None = None) -> Iterator[dict[str, Any]]:
    """Record the activations at `points` of the forwards run inside the block: a dict point -> list of tensors,
    one per forward (detached; `keep` maps each before it is stored, e.g. `lambda t: t[:, -1]` to keep the last
    position only). Hooks are removed on exit."""
    store: dict[str, list[Any]] = {p: [] for p in points}

    def recorder(point: str) -> Edit:
        def record(t: Any) -> None:
            t = t.detach()
            store[point].append(keep(t) if keep is not None else t)
        return record

    with hooks(model, {p: recorder(p) for p in points}):
        yield store


def add_vector(vector: Any, multiplier: float = 1.0, positions: slice | None = None) -> Edit:
    """An edit adding `multiplier * vector` to every position (or to `positions`) of the activation (ActAdd,
    Turner et al. 2023, arXiv:2308.10248; CAA, Rimsky et al. 2023, arXiv:2312.06681)."""
    cache: dict[tuple, Any] = {}

    def edit(t: Any) -> Any:
        key = (t.dtype, t.device)
        if key not in cache:
            cache[key] = (multiplier * vector).to(dtype=t.dtype, device=t.device)
        if positions is None:
            return t + cache[key]
        out = t.clone()
        out[:, positions] += cache[key]
        return out
    return edit


def residuals(model: Any, tokenizer: Any, texts: Sequence[str], layers: Sequence[int], batch_size: int = 16,
              point: str = "resid_post") -> Any:
    """The residual stream at the last token of each text, per layer: a float32 tensor [len(texts), len(layers),
    d_model]. Texts are tokenized without special tokens (rendered chat prompts carry their own), left-padded in
    batches, so the last column is every text's last token."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    out = [None] * len(texts)
    device = next(model.parameters()).device
    names = [f"{point}.{i}" for i in layers]
    keep_one = {"logits_to_keep": 1} if _takes(model, "logits_to_keep") else {}  # skip the unread vocabulary head
    for start in range(0, len(texts), max(1, batch_size)):
        chunk = encoded[start:start + batch_size]
        width = max(len(e) for e in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, e in enumerate(chunk):
            ids[row, width - len(e):] = torch.tensor(e, dtype=torch.long)
            mask[row, width - len(e):] = 1
        with torch.inference_mode(), capture(model, names, keep=lambda t: t[:, -1].float()) as acts:
            model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, **keep_one)
        stacked = torch.stack([acts[n][0] for n in names], dim=1).cpu()  # [rows, layers, d]
        for row in range(len(chunk)):
            out[start + row] = stacked[row]
    return torch.stack(out) if out else torch.zeros((0, len(layers), 0))


def _takes(model: Any, arg: str) -> bool:
    import inspect

    try:
        return arg in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def capture_nnsight(model: Any, tokenizer: Any, text: str, layers: Sequence[int]) -> Any:
    """The reference reader: `resid_post` of `layers` at every position of one text, read by nnsight's tracer
    ([len(layers), positions, d_model]); used to check `capture` and to time it."""
    import torch
    from nnsight import NNsight

    layer_list = decoder_layers(model)
    path = next(p for p in _LAYER_PATHS if _attr_path(model, p) is layer_list)
    wrapped = NNsight(model)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    saved = []
    with wrapped.trace(input_ids=ids, use_cache=False):
        envoys = _attr_path(wrapped, path)
        for i in layers:
            saved.append(envoys[i].output.save())
    return torch.stack([_first(s)[0].detach().float() for s in saved])
