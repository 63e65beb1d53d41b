"""Where models and tensors run: one device choice (auto, cpu, cuda, cuda:N), the dtype and batch sizes that follow.

Semantics are PyTorch's (torch.device, torch.cuda; PyTorch docs "CUDA semantics"): `auto` is the current CUDA
device when torch sees one, else the CPU. Nothing here needs a GPU: on a CPU-only machine every function answers
for the CPU without touching CUDA, and a request for CUDA there is a ConfigError naming what is valid. torch is
imported lazily, so the CLI can check a request without loading it unless CUDA is asked for.

The choice comes, in order, from an explicit value (a ModelSpec's `device`, a `device` config key), the
ALIGNLAB_DEVICE environment variable (set by `alignlab --device`; worker processes inherit it), or `auto`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from alignlab.core.errors import ConfigError

ENV = "ALIGNLAB_DEVICE"
VALID = "auto, cpu, cuda or cuda:N (N a GPU index)"
CUDA_BATCH_FACTOR = 8
"""How many times larger an `auto` batch is on CUDA than its CPU default: a GPU's throughput grows with the batch
long after a CPU's has flattened (a 135M-parameter model fills few of an accelerator's cores at batch 8-32)."""


def parse(value: Any, source: str = "device") -> str:
    """A device request normalised to 'auto', 'cpu', 'cuda' or 'cuda:N'; ConfigError naming `source` otherwise.

    None or '' mean 'auto'. A torch.device is accepted as its string."""
    text = "auto" if value is None else str(value).strip().lower()
    if text in ("", "auto"):
        return "auto"
    if text in ("cpu", "cuda"):
        return text
    m = re.fullmatch(r"cuda:(\d+)", text)
    if m:
        return f"cuda:{int(m.group(1))}"
    raise ConfigError(f"{source} {value!r} is not a device; valid: {VALID}")


def requested(value: Any = None) -> str:
    """The request in force: `value` if given (not None / 'auto'), else ALIGNLAB_DEVICE, else 'auto' (parsed)."""
    explicit = parse(value)
    if explicit != "auto":
        return explicit
    return parse(os.environ.get(ENV) or None, source=ENV)


def _no_cuda(req: str) -> ConfigError:
    import torch

    build = torch.version.cuda
    why = f"torch {torch.__version__} is built for CUDA {build} but sees no GPU" if build else \
        f"torch {torch.__version__} is a CPU-only build"
    return ConfigError(f"device {req!r} was requested (argument, --device or {ENV}) but {why}; valid on this "
                       "machine: auto or cpu")


def resolve(value: Any = None) -> str:
    """The device to use, as a torch device string: 'cpu', 'cuda' (the current GPU) or 'cuda:N'.

    'auto' -> 'cuda' where torch.cuda.is_available(), else 'cpu'. ConfigError for a CUDA request without CUDA or
    an index beyond torch.cuda.device_count()."""
    req = requested(value)
    if req == "cpu":
        return "cpu"  # no torch import, no CUDA probe
    import torch

    available = torch.cuda.is_available()
    if req == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise _no_cuda(req)
    if req.startswith("cuda:"):
        n, count = int(req.split(":")[1]), torch.cuda.device_count()
        if n >= count:
            raise ConfigError(f"device {req!r} was requested but torch sees {count} GPU(s); valid: auto, cpu, cuda, "
                              + ", ".join(f"cuda:{i}" for i in range(count)))
    return req


def select(value: Any = None) -> Any:
    """`resolve` as a torch.device."""
    import torch

    return torch.device(resolve(value))


def is_cuda(device: Any) -> bool:
    """Whether a resolved device (string or torch.device) is a CUDA device."""
    return str(device).startswith("cuda")


def on_cuda(value: Any = None) -> bool:
    """Whether the device in force (`resolve(value)`) is a GPU."""
    return is_cuda(resolve(value))


def model_device(model: Any) -> Any:
    """The device of a torch module's first parameter (CPU for a module without parameters)."""
    import torch

    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def cpu_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX); without them torch emulates bf16, which
    was measured 50x slower than fp32 on an AVX2-only EPYC (docs/benchmarks.md). Not Linux: False (no guess)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bf16(value: Any = None) -> bool:
    """Whether bf16 runs natively on the device in force: torch.cuda.is_bf16_supported() on a GPU (Ampere and
    later), `cpu_native_bf16` on the CPU."""
    device = resolve(value)
    if is_cuda(device):
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return cpu_native_bf16()


def auto_dtype(value: Any = None) -> str:
    """What dtype 'auto' means on the device in force: 'bfloat16' where bf16 is native (`native_bf16`), else
    'float32'.

    A GPU without bf16 (before Ampere) gets float32, not float16: the trainers here (TRL's GRPO/RLOO/DPO, the reward
    trainer) switch only bf16 autocast, and fp16 training would need loss scaling and overflows in activations that
    bf16's range holds. Ask for 'float16' explicitly to run inference in half precision there."""
    return "bfloat16" if native_bf16(value) else "float32"


def auto_batch(value: int | str | None, cpu_default: int, device: Any = None,
               factor: int = CUDA_BATCH_FACTOR) -> int:
    """A batch size where 0, None or 'auto' means 'the default for the device': `cpu_default` on the CPU (so CPU
    behaviour is unchanged), `factor` x `cpu_default` on CUDA. A positive value is returned as it is.

    `device`: a resolved device (string / torch.device); None resolves the device in force. Only inference and
    scoring batches follow this: a training batch is part of the algorithm (it changes the gradient) and is never
    scaled behind the user's back."""
    if value not in (None, 0, "0", "auto"):
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = -1
        if n < 1:
            raise ConfigError(f"batch size {value!r} is not valid; valid: a positive integer, or 0 / auto for the "
                              "device's default")
        return n
    dev = resolve() if device is None else str(device)
    return cpu_default * factor if is_cuda(dev) else cpu_default


def trainer_kwargs(value: Any = None) -> dict[str, Any]:
    """transformers / TRL TrainingArguments that follow the device in force: `use_cpu` is False only on CUDA.

    The Trainer (through accelerate) then uses the first GPU torch sees, so a request for another (cuda:N, N > 0)
    is a ConfigError here rather than a model on one GPU and its inputs on another: make that GPU the only visible
    one instead (CUDA_VISIBLE_DEVICES=N with --device cuda)."""
    where = resolve(value)
    if where.startswith("cuda:") and where != "cuda:0":
        n = where.split(":")[1]
        raise ConfigError(f"device {where!r}: training (TRL / transformers Trainer) runs on the first visible GPU; "
                          f"valid: cuda or cuda:0, or select GPU {n} with CUDA_VISIBLE_DEVICES={n} and --device cuda")
    return {"use_cpu": not is_cuda(where)}


def to_numpy(tensor: Any) -> Any:
    """A tensor on any device as a numpy array (detached, copied to the CPU where needed)."""
    return tensor.detach().cpu().numpy()
