"""Device selection (core/device.py) on a CPU machine: CUDA is faked by monkeypatching torch.cuda's probes."""

from __future__ import annotations

import pytest
import torch

from alignlab.core import device
from alignlab.core.errors import ConfigError, UserError
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(device.ENV, raising=False)


def fake_cuda(monkeypatch, available: bool, count: int = 1, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if available else 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize("value, expected", [
    (None, "auto"), ("", "auto"), ("auto", "auto"), ("CPU", "cpu"), (" cuda ", "cuda"), ("cuda:0", "cuda:0"),
    ("cuda:03", "cuda:3"), (torch.device("cpu"), "cpu"),
])
def test_parse_normalises_valid_requests(value, expected):
    assert device.parse(value) == expected


@pytest.mark.parametrize("value", ["gpu", "tpu", "cuda:", "cuda:-1", "cuda:x", "mps", "0"])
def test_parse_rejects_anything_else_naming_what_is_valid(value):
    with pytest.raises(ConfigError, match=r"not a device; valid: auto, cpu, cuda or cuda:N"):
        device.parse(value)


def test_auto_is_cuda_when_torch_sees_a_gpu_else_cpu(monkeypatch):
    fake_cuda(monkeypatch, available=True)
    assert device.resolve() == "cuda" and device.on_cuda() and device.select() == torch.device("cuda")
    assert device.resolve("cpu") == "cpu" and not device.on_cuda("cpu")  # an explicit cpu wins
    fake_cuda(monkeypatch, available=False)
    assert device.resolve() == "cpu" and device.select() == torch.device("cpu") and not device.on_cuda()


def test_environment_variable_sets_the_request_and_an_explicit_value_overrides_it(monkeypatch):
    fake_cuda(monkeypatch, available=True, count=2)
    monkeypatch.setenv(device.ENV, "cpu")
    assert device.resolve() == "cpu" and device.resolve("auto") == "cpu"  # auto defers to the variable
    assert device.resolve("cuda:1") == "cuda:1"
    monkeypatch.setenv(device.ENV, "cuda:1")
    assert device.resolve() == "cuda:1" and device.trainer_kwargs("cuda:0") == {"use_cpu": False}
    with pytest.raises(ConfigError, match="first visible GPU; valid: cuda or cuda:0, or .* CUDA_VISIBLE_DEVICES=1"):
        device.trainer_kwargs()  # the Trainer would put the model on GPU 0 and leave the rest on GPU 1
    monkeypatch.setenv(device.ENV, "graphics-card")
    with pytest.raises(ConfigError, match=f"{device.ENV} 'graphics-card' is not a device"):
        device.resolve()


def test_cuda_without_cuda_and_a_missing_index_are_clear_errors(monkeypatch):
    fake_cuda(monkeypatch, available=False)
    for req in ("cuda", "cuda:0"):
        with pytest.raises(UserError, match=f"device '{req}' was requested .* valid on this machine: auto or cpu"):
            device.resolve(req)
    fake_cuda(monkeypatch, available=True, count=2)
    with pytest.raises(ConfigError, match=r"sees 2 GPU\(s\); valid: auto, cpu, cuda, cuda:0, cuda:1"):
        device.resolve("cuda:2")


@pytest.mark.parametrize("bf16, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_dtype_on_a_gpu_is_bf16_where_supported_else_float32(monkeypatch, bf16, expected):
    from alignlab.lm.models import native_bf16, resolve_dtype

    fake_cuda(monkeypatch, available=True, bf16=bf16)
    assert device.auto_dtype() == expected and resolve_dtype("auto") == expected and native_bf16() is bf16
    assert resolve_dtype("float32") == "float32"  # an explicit dtype is never changed


def test_on_the_cpu_auto_dtype_keeps_the_cpu_rule_even_where_a_gpu_exists(monkeypatch):
    from alignlab.lm.models import resolve_dtype

    monkeypatch.setattr(device, "cpu_native_bf16", lambda: False)
    fake_cuda(monkeypatch, available=True, bf16=True)
    assert resolve_dtype("auto", "cpu") == "float32" and device.auto_dtype("cpu") == "float32"
    monkeypatch.setenv(device.ENV, "cpu")
    assert resolve_dtype("auto") == "float32"
    monkeypatch.setattr(device, "cpu_native_bf16", lambda: True)  # an AVX512-BF16 / AMX CPU
    assert resolve_dtype("auto") == "bfloat16"


def test_auto_batch_scales_only_on_cuda_and_only_when_asked(monkeypatch):
    assert device.auto_batch(0, 16, "cpu") == device.auto_batch("auto", 16, "cpu") == 16
    assert device.auto_batch(0, 16, "cuda:0") == 16 * device.CUDA_BATCH_FACTOR
    assert device.auto_batch(None, 8, torch.device("cuda")) == 8 * device.CUDA_BATCH_FACTOR
    assert device.auto_batch(5, 16, "cuda") == 5  # an explicit size is kept on any device
    fake_cuda(monkeypatch, available=False)
    assert device.auto_batch(0, 32) == 32 and device.trainer_kwargs() == {"use_cpu": True}
    for bad in (-1, "lots"):
        with pytest.raises(ConfigError, match="batch size .* valid: a positive integer, or 0 / auto"):
            device.auto_batch(bad, 16, "cpu")


def test_tiny_llama_loads_and_generates_on_the_selected_device_end_to_end(monkeypatch):
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.generate import generate
    from alignlab.lm.models import ModelSpec, load
    from alignlab.lm.testing import cached_tiny_llama

    fake_cuda(monkeypatch, available=False)
    monkeypatch.setenv(device.ENV, "auto")
    where = device.select()
    model, tok = load(ModelSpec(str(cached_tiny_llama()), dtype="auto", device="auto"))
    assert device.model_device(model) == where == torch.device("cpu")
    assert next(model.parameters()).dtype == getattr(torch, device.auto_dtype())
    texts = generate(model, tok, ["Hello", "The capital of France is"], max_new_tokens=4)
    assert len(texts) == 2 and all(g.completion_tokens >= 1 for g in texts)
    chat = LocalChatModel(model, tok)
    assert chat.prefix_store is not None  # on the CPU the prefix cache stays on
    assert len(chat.chat([[{"role": "user", "content": "Hi"}]], max_new_tokens=3)) == 1


def test_on_a_gpu_load_moves_the_model_there_in_bf16(monkeypatch):
    """The CUDA branch of `load` with the GPU simulated: the model is sent to the resolved device, in bf16."""
    from alignlab.lm.models import ModelSpec, load
    from alignlab.lm.testing import cached_tiny_llama

    fake_cuda(monkeypatch, available=True, count=2, bf16=True)
    sent = []
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: sent.append(a) or self)
    model, _ = load(ModelSpec(str(cached_tiny_llama()), dtype="auto", device="cuda:1"))
    assert sent == [("cuda:1",)] and next(model.parameters()).dtype == torch.bfloat16
    sent.clear()
    load(ModelSpec(str(cached_tiny_llama()), dtype="auto", device="cpu"))
    assert sent == []  # the CPU path never moves anything


def test_loading_on_cuda_without_cuda_fails_before_reading_the_model(monkeypatch):
    from alignlab.lm.models import ModelSpec, load

    fake_cuda(monkeypatch, available=False)
    with pytest.raises(UserError, match="device 'cuda' was requested"):
        load(ModelSpec("/no/such/model/folder", device="cuda"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
@pytest.mark.parametrize("args, env", [
    (["--device", "cuda", "run", "off-switch-game", "--quick"], {}),
    (["list"], {device.ENV: "gpu"}),
])
def test_cli_cuda_request_without_cuda_is_one_line_exit_2(tmp_path, args, env):
    out = run_cli(*args, runs_dir=tmp_path / "runs", **env)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "valid" in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written
