"""The LM FLOP-fraction benchmark's arithmetic: training FLOPs from parameter counts and token positions (Kaplan
et al. 2020's 6 N T / 2 N T), the generation count it borrows, the step probe's record of forwards, usage errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_generation  # noqa: E402
import bench_lm_flops as B  # noqa: E402


def test_training_flops_by_hand():
    # a DPO step: policy forward on 4 rows x 10 positions with gradients, the reference forward without
    n_body, n_head = 1000, 50
    forwards = [(4, 10, True), (4, 10, False)]
    expected = 6 * (1000 * 40 + 50 * 36) + 2 * (1000 * 40 + 50 * 36)
    assert B.training_flops(n_body, n_head, forwards, "lm") == expected == 334_400
    # a reward-model step: the score head at every position
    assert B.training_flops(n_body, 3, [(4, 10, True)], "score") == 6 * (1000 * 40 + 3 * 40)
    assert B.training_flops(n_body, n_head, [], "lm") == 0


def test_generation_flops_by_hand():
    # 2 tokens generated after a 3-token prompt: 2 x 2 x params, attention over 3 then 4 positions
    assert bench_generation.generation_flops(100, 7, [(3, 2)]) == 2 * 2 * 100 + 7 * (2 * 3 + 1)


def test_step_probe_records_backbone_forwards_and_their_grad_mode():
    torch = pytest.importorskip("torch")
    probe = B.StepProbe(vocab=100)
    emb, small = torch.nn.Embedding(100, 4), torch.nn.Embedding(8, 4)
    ids = torch.zeros(3, 5, dtype=torch.long)
    handle = torch.nn.modules.module.register_module_forward_hook(probe.hook)
    try:
        probe.begin()
        emb(ids)
        small(ids)          # a position embedding or the like: not the vocabulary's
        with torch.no_grad():
            emb(ids[:2])
        probe.end()
    finally:
        handle.remove()
    (seconds, forwards), = probe.steps
    assert seconds >= 0 and forwards == [(3, 5, True), (2, 5, False)]


@pytest.mark.parametrize("args, message", [(["--threads", "0"], "--threads 0: must be a positive integer"),
                                           (["--cores", "a"], "expected core ids")])
def test_usage_errors_exit_2(args, message):
    proc = subprocess.run([sys.executable, str(BENCH / "bench_lm_flops.py"), *args], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, ALIGNLAB_DEVICE="cpu"))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
