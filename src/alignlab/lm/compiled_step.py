"""A compiled batch-1 decoding step on a static KV cache (TorchInductor, Ansel et al. 2024, "PyTorch 2", ASPLOS).

One token at a time is the single stream llama.cpp serves; on a CPU it is bound by reading every weight once per
token and by the fixed cost of ~1,300 small operations per step (30 layers). `BatchDecoder` (`lm.generate`) runs the
step eagerly with oneDNN's bf16 matrix-vector kernel. Here the whole step is one TorchInductor graph on a
preallocated cache of fixed size (as transformers' StaticCache: the new key and value written at the position with
`index_copy_`, attention over the whole buffer with later positions masked), so Python runs once per token, the
matrix-vector products become vectorised reductions streaming the weights, and the small ops fuse. The cache size
is rounded up to a power of two (>= 256), so few shapes are compiled.

Not bitwise the eager step: products and attention sum in another order (fp32, rounded to the model's dtype where
transformers rounds; the attention weights rounded before the sum over values as the CPU flash kernel does), and in
bf16 the logits differ by a few units in the last place, enough to flip near-tied greedy choices. Measured on the
embedded SmolLM2-135M in bf16 (docs/benchmarks.md): 1.4-1.6x the eager batch-1 rate, but greedy replies equal the
eager path's on 7 of 8 benchmark prompts (4 of 8 over 40 tokens with EOS ignored). So it is opt-in (`enable`, or
ALIGNLAB_COMPILED_DECODE=1), never the default, and the first compile takes minutes (seconds once TorchInductor's
on-disk cache holds it). If compiling fails, one warning is given and decoding stays on `BatchDecoder`.
"""

from __future__ import annotations

import os
import time
import warnings
import weakref
from typing import Any, Sequence

from alignlab.lm.generate import _decode_weights

MIN_CAPACITY = 256
MAX_COMPILES = 8  # torch._dynamo.config.recompile_limit's default: graphs (models x cache sizes) per process
COMPILE_OPTIONS = {"emulate_precision_casts": True,  # round to bf16 where the eager ops round
                   "realize_opcount_threshold": 1}  # compute each norm's output once, not inside every dot product
_STATE: dict[str, Any] = {"enabled": None, "failed": False}
_STEPS: "weakref.WeakKeyDictionary[Any, dict[int, Any]]" = weakref.WeakKeyDictionary()
COMPILE_SECONDS: list[float] = []
"""Seconds of each compile (warm-up call) this process ran, for benchmarks to print."""


def enable(on: bool = True) -> None:
    """Use (or stop using) the compiled step for batch-1 decoding in `prefix_cache.generate_cached`."""
    _STATE["enabled"] = bool(on)


def enabled() -> bool:
    if _STATE["enabled"] is None:
        return os.environ.get("ALIGNLAB_COMPILED_DECODE", "0") not in ("", "0", "false", "no")
    return bool(_STATE["enabled"])


def bucket(capacity: int) -> int:
    """The cache size compiled for `capacity` tokens: the next power of two, at least MIN_CAPACITY."""
    size = MIN_CAPACITY
    while size < capacity:
        size *= 2
    return size


class _Weights:
    """The step's tensors, taken from the model once (fused q|k|v and gate|up, as `BatchDecoder` fuses them)."""

    def __init__(self, model: Any, capacity: int):
        import torch

        cfg, inner = model.config, model.model
        layers = inner.layers[:cfg.num_hidden_layers]
        attn0 = layers[0].self_attn
        self.dtype = model.lm_head.weight.dtype
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, attn0.head_dim
        self.inter = layers[0].mlp.gate_proj.out_features
        self.scaling = float(attn0.scaling)
        self.eps = [float(layer.input_layernorm.variance_epsilon) for layer in layers]
        self.embed = inner.embed_tokens.weight
        self.qkv = [torch.cat([la.self_attn.q_proj.weight, la.self_attn.k_proj.weight, la.self_attn.v_proj.weight])
                    for la in layers]
        self.o = [la.self_attn.o_proj.weight for la in layers]
        self.gate_up = [torch.cat([la.mlp.gate_proj.weight, la.mlp.up_proj.weight]) for la in layers]
        self.down = [la.mlp.down_proj.weight for la in layers]
        self.norm1 = [la.input_layernorm.weight for la in layers]
        self.norm2 = [la.post_attention_layernorm.weight for la in layers]
        self.norm = inner.norm.weight
        self.norm_eps = float(inner.norm.variance_epsilon)
        self.head = model.lm_head.weight
        self.act = layers[0].mlp.act_fn
        positions = torch.arange(capacity)[None]
        probe = torch.zeros((1, 1, self.head_dim), dtype=self.dtype)
        cos, sin = inner.rotary_emb(probe, positions)  # the model's own rotary tables, [1, capacity, head_dim]
        self.cos, self.sin = cos[0], sin[0]
        self.signature = _signature(model)


def _signature(model: Any) -> tuple:
    """Where the model's parameters live and their versions: a changed one means the weights taken are stale."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def _rms(x: Any, weight: Any, eps: float) -> Any:
    """transformers' LlamaRMSNorm: in fp32, back to the input dtype, times the weight."""
    import torch

    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _mv(weight: Any, x: Any) -> Any:
    """weight [out, in] times x [in], summed in fp32 and rounded to the weight's dtype (a bf16 Linear's contract)."""
    return (weight.float() * x.float()).sum(-1).to(weight.dtype)


def _step(w: _Weights, token: Any, pos: Any, keys: list, values: list) -> Any:
    """One token through the model; writes its keys and values at `pos`; float32 logits [1, vocab]."""
    import torch

    nh, kvh, d = w.heads, w.kv_heads, w.head_dim
    half, group = d // 2, nh // kvh
    h = w.embed.index_select(0, token)[0]  # [hidden]
    cos, sin = w.cos.index_select(0, pos), w.sin.index_select(0, pos)  # [1, d]
    visible = torch.arange(w.cos.shape[0]) <= pos  # [capacity]
    for i in range(len(w.qkv)):
        proj = _mv(w.qkv[i], _rms(h, w.norm1[i], w.eps[i]))
        qk = proj[:(nh + kvh) * d].view(nh + kvh, d)
        qk = qk * cos + torch.cat((-qk[:, half:], qk[:, :half]), dim=-1) * sin  # rotate_half, as transformers
        keys[i].index_copy_(1, pos, qk[nh:, None])
        values[i].index_copy_(1, pos, proj[(nh + kvh) * d:].view(kvh, 1, d))
        q = qk[:nh].view(kvh, group, 1, d).float()
        scores = (q * keys[i][:, None].float()).sum(-1) * w.scaling  # [kvh, group, capacity]
        scores = scores.masked_fill(~visible, float("-inf"))
        e = torch.exp(scores - scores.amax(-1, keepdim=True))
        # the weights rounded to the model's dtype before the sum over values, as the CPU flash-attention kernel does
        attn = (e.to(w.dtype).float()[..., None] * values[i][:, None].float()).sum(-2) / e.sum(-1, keepdim=True)
        h = h + _mv(w.o[i], attn.to(w.dtype).reshape(nh * d))
        gu = _mv(w.gate_up[i], _rms(h, w.norm2[i], w.eps[i]))
        h = h + _mv(w.down[i], w.act(gu[:w.inter]) * gu[w.inter:])
    return _mv(w.head, _rms(h, w.norm, w.norm_eps)).float()[None]


class CompiledDecoder:
    """Batch-1 decoding steps with `BatchDecoder`'s interface (`fill`, `step`, `select`, `row_cache`), one compiled
    graph per model and cache size."""

    def __init__(self, weights: _Weights, fn: Any, capacity: int):
        import torch

        self.w, self.fn, self.capacity = weights, fn, capacity
        shape = (weights.kv_heads, capacity, weights.head_dim)
        self.k = [torch.zeros(shape, dtype=weights.dtype) for _ in weights.qkv]
        self.v = [torch.zeros(shape, dtype=weights.dtype) for _ in weights.qkv]
        self.length = 0

    @classmethod
    def create(cls, model: Any, rows: int, capacity: int) -> "CompiledDecoder | None":
        """A decoder where it applies (enabled, one row, a model `BatchDecoder` runs, compiling works); else None."""
        if rows != 1 or not enabled() or _STATE["failed"] or _decode_weights(model) is None:
            return None
        size = bucket(capacity)
        per_model = _STEPS.setdefault(model, {})
        entry = per_model.get(size)
        if entry is None or entry[0].signature != _signature(model):
            if len(COMPILE_SECONDS) >= MAX_COMPILES:  # dynamo's recompile limit for one function: stay eager
                return None
            entry = _compile(model, size)
            if entry is None:
                return None
            per_model[size] = entry
        return cls(entry[0], entry[1], size)

    def fill(self, caches: Sequence[Any], lengths: Sequence[int]) -> None:
        """Put the one row's cache (per layer (keys, values), each [kv_heads, n, head_dim]) at columns [0, n)."""
        (cache,), (n,) = caches, lengths
        if n > self.capacity:
            raise ValueError(f"{n} cached tokens do not fit a capacity of {self.capacity}")
        for layer, (keys, values) in enumerate(cache or []):
            self.k[layer][:, :n] = keys
            self.v[layer][:, :n] = values
        self.length = n

    def step(self, tokens: Any, positions: Any) -> Any:
        """Feed one token; the next-token logits, float32 [1, vocab]. Its position is the cache length (one row,
        never padded, so `positions` always equals it)."""
        import torch

        if self.length >= self.capacity:
            raise RuntimeError("the decoder's cache is full")
        pos = torch.tensor([self.length])
        with torch.inference_mode():
            out = self.fn(self.w, tokens[:1], pos, self.k, self.v)
        self.length += 1
        return out

    def select(self, keep: Sequence[int]) -> list[int]:
        return list(keep)  # one row: kept ([0]) or the decoding ends

    def row_cache(self, b: int) -> list:
        t = self.length
        return [(k[:, :t].clone(), v[:, :t].clone()) for k, v in zip(self.k, self.v)]


def _compile(model: Any, size: int) -> tuple[_Weights, Any] | None:
    """Compile the step for `model` at cache size `size` and run it once (the compile happens there); None, with one
    warning per process, if that fails."""
    import torch

    try:
        with torch.inference_mode():
            weights = _Weights(model, size)
            fn = torch.compile(_step, dynamic=False, fullgraph=True, options=COMPILE_OPTIONS)
            started = time.perf_counter()
            keys = [torch.zeros((weights.kv_heads, size, weights.head_dim), dtype=weights.dtype)
                    for _ in weights.qkv]
            values = [torch.zeros_like(k) for k in keys]
            fn(weights, torch.tensor([0]), torch.tensor([0]), keys, values)
            COMPILE_SECONDS.append(time.perf_counter() - started)
    except Exception as exc:  # any compiler or tracing failure: eager decoding is still correct
        _STATE["failed"] = True
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        warnings.warn(f"compiled decoding unavailable ({type(exc).__name__}: {first[:200]}); decoding eagerly",
                      RuntimeWarning, stacklevel=3)
        return None
    return weights, fn
