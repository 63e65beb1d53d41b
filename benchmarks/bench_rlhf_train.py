"""Seconds per DPO step and per RL (GRPO) step, alignlab's wrappers (alignlab.lm.dpo / alignlab.lm.rl) against
TRL 1.16's defaults for the same model (embedded SmolLM2-135M-Instruct, safetensors copy), batch and sequence
lengths, measured side by side in one process; and the achieved training FLOP/s as a fraction of this machine's
matmul peak measured in the same run (torch.matmul on square fp32 and bf16 matrices, same thread count).

DPO: Rafailov et al. 2023 (arXiv:2305.18290); GRPO: Shao et al. 2024 (arXiv:2402.03300); TRL (huggingface/trl).
The "TRL defaults" arm sets only what it needs to run (output_dir, batch size, max_steps, use_cpu, report_to, and
for GRPO num_generations, max_completion_length and beta > 0); everything else, torch's default thread count
included, is TRL's / torch's. Step times come from a Trainer callback (end of step to end of step, model load
excluded), after one warm-up step. FLOPs are counted by a hook on the model's forward (every forward of the
policy, the reference model and generation):

    FLOPs = sum over forwards of k * (N_body * T + N_head * T_logits),  k = 6 with gradients, 2 without,

N_body = parameters outside the (tied) embedding / LM head, N_head = vocab x d_model, T = token positions
computed (padding included), T_logits = positions whose logits are computed (TRL's `logits_to_keep`).
Attention-score FLOPs (~3% at these lengths) and gradient-checkpointing recompute are not counted.

Run: .venv/bin/python benchmarks/bench_rlhf_train.py [--quick] [--steps 3] [--explore]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import os
import sys
import tempfile
import time

# The TRL-defaults arm must see torch's own default thread count, not a benchmark-wide OMP_NUM_THREADS=1.
_USER_OMP = os.environ.pop("OMP_NUM_THREADS", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import _util  # noqa: E402
from _util import figure, pin  # noqa: E402

from alignlab.lm.models import use_bf16  # noqa: E402

BATCH = 4                  # DPO pairs per step; GRPO completions per step
GENERATIONS = 4            # GRPO group size
COMPLETION = 32            # GRPO max_completion_length
KL_BETA = 0.05             # GRPO beta (> 0: the reference model runs, as in alignlab's RLConfig)

TOPICS = ["the water cycle", "how bridges carry weight", "why the sky is blue", "how vaccines work",
          "the history of the printing press", "how a refrigerator works", "plate tectonics", "photosynthesis",
          "how compilers work", "the causes of the seasons", "how bees make honey", "how tides form"]


class _Probe:
    """Process-wide step timer and FLOP counter; the same for every arm."""

    def __init__(self):
        self.flops = 0.0
        self.tokens_grad = 0
        self.tokens_nograd = 0
        self.marks: list[tuple[float, float, float, int, int]] = []   # (wall, cpu, flops, tok_grad, tok_nograd)
        self.n_body = self.n_head = 0.0

    def mark(self):
        self.marks.append((time.perf_counter(), time.process_time(), self.flops, self.tokens_grad,
                           self.tokens_nograd))


PROBE = _Probe()


def install_probes(model_path: str):
    """Count FLOPs in LlamaForCausalLM.forward (class-level, so policy, reference and generation alike) and
    time steps with a callback that every Trainer gets (transformers' DEFAULT_CALLBACKS)."""
    import json

    import torch
    import transformers.trainer as hf_trainer
    from transformers import TrainerCallback
    from transformers.models.llama import modeling_llama

    cfg = json.load(open(os.path.join(model_path, "config.json")))
    d, vocab, layers, inter = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    kv = cfg["num_key_value_heads"] * d // cfg["num_attention_heads"]
    PROBE.n_head = float(vocab * d)
    PROBE.n_body = float(layers * (d * d * 2 + 2 * d * kv + 3 * d * inter + 2 * d) + d)   # q,o + k,v + MLP + norms

    # TRL 1.16 scores training/reference forwards through its fused LM head (add_fused_lm_head), which calls the
    # backbone (LlamaModel) directly and projects every position but the last through the head; generation goes
    # through LlamaForCausalLM.forward, which projects only `logits_to_keep` positions. Count both paths.
    causal_forward, body_forward = modeling_llama.LlamaForCausalLM.forward, modeling_llama.LlamaModel.forward
    inside = [0]

    def add(tokens: int, head_tokens: int):
        grad = torch.is_grad_enabled()
        PROBE.flops += (6 if grad else 2) * (PROBE.n_body * tokens + PROBE.n_head * head_tokens)
        if grad:
            PROBE.tokens_grad += tokens
        else:
            PROBE.tokens_nograd += tokens

    @functools.wraps(causal_forward)
    def counted_causal(self, input_ids=None, *args, inputs_embeds=None, logits_to_keep=0, **kwargs):
        x = input_ids if input_ids is not None else inputs_embeds
        b, t = x.shape[0], x.shape[1]
        if isinstance(logits_to_keep, int):
            keep = t if logits_to_keep == 0 else min(logits_to_keep, t)
        else:
            keep = int(logits_to_keep.numel())
        add(b * t, b * keep)
        inside[0] += 1
        try:
            return causal_forward(self, input_ids, *args, inputs_embeds=inputs_embeds, logits_to_keep=logits_to_keep,
                                  **kwargs)
        finally:
            inside[0] -= 1

    @functools.wraps(body_forward)
    def counted_body(self, input_ids=None, *args, inputs_embeds=None, **kwargs):
        if not inside[0]:   # called by TRL's fused head: it projects t - 1 positions per row
            x = input_ids if input_ids is not None else inputs_embeds
            b, t = x.shape[0], x.shape[1]
            add(b * t, b * (t - 1))
        return body_forward(self, input_ids, *args, inputs_embeds=inputs_embeds, **kwargs)

    modeling_llama.LlamaForCausalLM.forward = counted_causal
    modeling_llama.LlamaModel.forward = counted_body

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            PROBE.marks.clear()
            PROBE.mark()

        def on_step_end(self, args, state, control, **kw):
            PROBE.mark()

    hf_trainer.DEFAULT_CALLBACKS.append(StepTimer)


def matmul_peak(dtype_name: str, threads: int, n: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of torch.matmul on n x n matrices (2 n^3 FLOPs) with `threads` torch threads."""
    import torch

    torch.set_num_threads(threads)
    return _util.matmul_peak({"fp32": "float32", "bf16": "bfloat16"}[dtype_name], size=n, repeats=reps)


def dpo_data(n: int):
    from alignlab.rewards.reward_models import comparisons_dataset

    prompts, chosen, rejected = [], [], []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompts.append(f"Explain {topic} to a curious twelve-year-old in a short paragraph.")
        chosen.append(f"Here is a simple explanation of {topic}. It starts with a few basic ideas that fit "
                      f"together. First, something changes; then that change causes another one, and the pattern "
                      f"repeats. Scientists checked this with careful experiments, so we can trust it.")
        rejected.append(f"Honestly, {topic} is far too complicated to explain, and nobody really understands it. "
                        f"You should not worry about it at all; just ask an expert someday, they will tell you "
                        f"whatever they think is right, and that will be fine for now.")
    return comparisons_dataset(prompts, chosen, rejected)


def rl_data(n: int):
    from alignlab.lm.rl import prompts_dataset

    return prompts_dataset([f"Write a long, detailed essay about {TOPICS[i % len(TOPICS)]}." for i in range(n)])


def word_reward(prompts, completions, **_):
    """Cheap reward (pure Python, negligible time): prefer about 20 words."""
    from alignlab.lm.rl import completion_text

    return [-abs(len(completion_text(c).split()) - 20) / 20.0 for c in completions]


def run_arm(label: str, fn) -> dict:
    """Run one training arm; return its timings and FLOP counts over the steps after the warm-up step."""
    PROBE.marks.clear()
    started = time.perf_counter()
    fn()
    m = PROBE.marks
    if len(m) < 3:
        raise RuntimeError(f"{label}: fewer than 2 steps recorded")
    setup = m[0][0] - started
    warm = m[1][0] - m[0][0]
    steps = len(m) - 2
    wall = (m[-1][0] - m[1][0]) / steps
    cpu = (m[-1][1] - m[1][1]) / steps
    flops = (m[-1][2] - m[1][2]) / steps
    tg = (m[-1][3] - m[1][3]) / steps
    tn = (m[-1][4] - m[1][4]) / steps
    r = dict(label=label, setup=setup, warm=warm, steps=steps, wall=wall, cpu=cpu, flops=flops, tok_grad=tg,
             tok_nograd=tn, load=os.getloadavg()[0])
    print(f"  {label:<46} {wall:7.2f} s/step (cpu {cpu:6.2f} s)  warm-up {warm:6.2f} s  setup {setup:5.1f} s  "
          f"{flops / 1e12:6.3f} TFLOP/step  tokens grad/no-grad {tg:6.0f}/{tn:6.0f}  load {r['load']:.1f}",
          flush=True)
    gc.collect()
    return r


def trl_dpo_default(path, data, out, steps, default_threads):
    import torch
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(default_threads)
    tok = AutoTokenizer.from_pretrained(path)
    args = DPOConfig(output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, use_cpu=True,
                     report_to="none")
    DPOTrainer(model=path, args=args, train_dataset=data, processing_class=tok).train()


def trl_grpo_default(path, data, out, steps, default_threads):
    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(default_threads)
    tok = AutoTokenizer.from_pretrained(path)
    args = GRPOConfig(output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, use_cpu=True,
                      report_to="none", num_generations=GENERATIONS, max_completion_length=COMPLETION, beta=KL_BETA)
    GRPOTrainer(model=path, reward_funcs=word_reward, args=args, train_dataset=data, processing_class=tok).train()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per arm (after one warm-up step)")
    parser.add_argument("--quick", action="store_true", help="one timed step per arm")
    parser.add_argument("--only", choices=["dpo", "rl"], default=None)
    parser.add_argument("--explore", action="store_true",
                        help="also time variants (threads, bf16, gradient checkpointing, LoRA, precomputed "
                             "reference log-probs) to choose the wrappers' defaults")
    args = parser.parse_args()
    steps = 1 if args.quick else args.steps
    total = steps + 1

    import torch

    from alignlab.lm import dpo, rl
    from alignlab.lm.models import embedded_path, offline

    offline()
    default_threads = torch.get_num_threads()
    # every arm on the same cores (all this process may use); each arm's threads are its own, stated per row
    pin(sorted(os.sched_getaffinity(0)), default_threads,
        arms=f"with each arm's own thread count (TRL defaults: torch's {default_threads}; alignlab's: its setting)")
    path = str(embedded_path())
    install_probes(path)
    tmp = tempfile.mkdtemp(prefix="alignlab-bench-rlhf-")
    ours_dpo, ours_rl = dpo.DPOSettings(), rl.RLConfig()
    seed = 42   # TRL's default seed in both arms, so both draw the same batches (the seed does not change speed)
    print(f"embedded SmolLM2-135M-Instruct ({path}); torch {torch.__version__}, default threads {default_threads}"
          f"{' (OMP_NUM_THREADS=' + _USER_OMP + ' ignored for the TRL arm)' if _USER_OMP else ''}; "
          f"{steps} timed step(s) after 1 warm-up; load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"model: N_body {PROBE.n_body / 1e6:.1f} M + N_head {PROBE.n_head / 1e6:.1f} M parameters; "
          f"FLOPs = sum_forwards k (N_body T + N_head T_logits), k = 6 trained / 2 no-grad", flush=True)

    peaks: dict[tuple[str, int], float] = {}

    def measure_peaks():
        for dt in ("fp32", "bf16"):
            for th in sorted({1, default_threads}):
                peaks[(dt, th)] = max(peaks.get((dt, th), 0.0), matmul_peak(dt, th))

    measure_peaks()
    print("matmul peak (2048^2, best of 5): " + ", ".join(f"{dt} {th} thr {v / 1e9:.0f} GFLOP/s"
                                                         for (dt, th), v in sorted(peaks.items())), flush=True)
    results: dict[str, list[dict]] = {"dpo": [], "rl": []}
    if args.only in (None, "dpo"):
        print(f"DPO: {BATCH} pairs per step; ours = DPOSettings() {ours_dpo}", flush=True)
        data = dpo_data(BATCH * total)
        arms = [("TRL defaults", lambda: trl_dpo_default(path, data, f"{tmp}/d0", total, default_threads),
                 default_threads, "bf16"),
                ("alignlab DPOSettings()", lambda: dpo.train(path, data, f"{tmp}/d1",
                                                             dataclasses.replace(ours_dpo, max_steps=total, seed=seed,
                                                                                 batch_size=BATCH)),
                 ours_dpo.threads, "bf16" if use_bf16(ours_dpo.bf16) else "fp32")]
        if args.explore:
            fields = {f.name for f in dataclasses.fields(dpo.DPOSettings)}
            for name, change in [("previous defaults: 1 thr fp32 ckpt", dict(threads=1, bf16=False, gc=True)),
                                 ("1 thr bf16 ckpt", dict(threads=1, bf16=True, gc=True)),
                                 ("1 thr fp32 no-ckpt", dict(threads=1, bf16=False, gc=False)),
                                 ("1 thr bf16 no-ckpt", dict(threads=1, bf16=True, gc=False)),
                                 ("2 thr bf16 no-ckpt", dict(threads=2, bf16=True, gc=False)),
                                 ("1 thr bf16 no-ckpt precompute-ref", dict(threads=1, bf16=True, gc=False,
                                                                            precompute_ref_log_probs=True)),
                                 ("1 thr bf16 no-ckpt LoRA", dict(threads=1, bf16=True, gc=False, lora=True))]:
                gcp = change.pop("gc")
                if "gradient_checkpointing" in fields:
                    change["gradient_checkpointing"], extra = gcp, {}
                else:   # an older dpo.py without the field: pass it through to DPOConfig
                    extra = dict(gradient_checkpointing=gcp,
                                 precompute_ref_log_probs=change.pop("precompute_ref_log_probs", False))
                s = dataclasses.replace(ours_dpo, seed=seed, max_steps=total, batch_size=BATCH, **change)
                arms.append((f"variant {name}", (lambda s=s, e=extra, k=len(arms): dpo.train(path, data,
                                                                                             f"{tmp}/dx{k}", s, **e)),
                             s.threads, "bf16" if use_bf16(s.bf16) else "fp32"))
        for label, fn, th, dt in arms:
            r = run_arm(label, fn)
            r.update(threads=th, dtype=dt)
            results["dpo"].append(r)
    if args.only in (None, "rl"):
        print(f"GRPO: {BATCH} completions per step, {GENERATIONS} per prompt, {COMPLETION} new tokens, beta "
              f"{KL_BETA}; ours = RLConfig() {ours_rl}", flush=True)
        data = rl_data(total * BATCH // GENERATIONS + 2)
        arms = [("TRL defaults", lambda: trl_grpo_default(path, data, f"{tmp}/r0", total, default_threads),
                 default_threads, "bf16"),
                ("alignlab RLConfig()", lambda: rl.train(path, word_reward, data, f"{tmp}/r1",
                                                         dataclasses.replace(ours_rl, max_steps=total, seed=seed,
                                                                             batch_size=BATCH,
                                                                             num_generations=GENERATIONS,
                                                                             max_completion_length=COMPLETION,
                                                                             beta=KL_BETA)),
                 ours_rl.threads, "bf16" if use_bf16(ours_rl.bf16) else "fp32")]
        # the setting this benchmark recommends for rl.py (measured DPO: ~2x less CPU time)
        if not use_bf16(ours_rl.bf16):
            arms.append(("alignlab RLConfig(bf16=True)",
                         lambda: rl.train(path, word_reward, data, f"{tmp}/r2",
                                          dataclasses.replace(ours_rl, max_steps=total, seed=seed, batch_size=BATCH,
                                                              num_generations=GENERATIONS, bf16=True,
                                                              max_completion_length=COMPLETION, beta=KL_BETA)),
                         ours_rl.threads, "bf16"))
        if args.explore:
            for th, bf, gcp in [(1, True, True), (1, True, False), (2, True, False), (2, False, False)]:
                c = dataclasses.replace(ours_rl, seed=seed, threads=th, bf16=bf, max_steps=total, batch_size=BATCH,
                                        num_generations=GENERATIONS, max_completion_length=COMPLETION, beta=KL_BETA)
                arms.append((f"variant {th} thr {'bf16' if bf else 'fp32'} {'ckpt' if gcp else 'no-ckpt'}",
                             (lambda c=c, g=gcp, k=len(arms): rl.train(path, word_reward, data, f"{tmp}/rx{k}", c,
                                                                       gradient_checkpointing=g)),
                             th, "bf16" if bf else "fp32"))
        for label, fn, th, dt in arms:
            r = run_arm(label, fn)
            r.update(threads=th, dtype=dt)
            results["rl"].append(r)

    measure_peaks()   # again after training: the peak is the best seen, so the fractions are not flattered
    print("matmul peak, best before/after: " + ", ".join(f"{dt} {th} thr {v / 1e9:.0f} GFLOP/s"
                                                        for (dt, th), v in sorted(peaks.items())), flush=True)
    best_peak = max(peaks.values())
    print(f"\n{'algorithm / arm':<40} {'s/step':>8} {'cpu s':>7} {'TFLOP':>7} {'GFLOP/s':>8} "
          f"{'% own peak':>10} {'% best peak':>11}")
    ok = True
    for algo, rows in results.items():
        for r in rows:
            rate = r["flops"] / r["wall"]
            own = peaks[(r["dtype"], r["threads"])]
            r["rate"] = rate
            print(f"{algo + ' / ' + r['label']:<40} {r['wall']:8.2f} {r['cpu']:7.2f} {r['flops'] / 1e12:7.3f} "
                  f"{rate / 1e9:8.1f} {100 * rate / own:9.1f}% {100 * rate / best_peak:10.1f}%  "
                  f"({r['dtype']}, {r['threads']} thr)")
        if len(rows) >= 2:
            base, ours = rows[0], rows[1]
            name = "DPO" if algo == "dpo" else "GRPO"
            ok &= figure(f"{name} s/step, alignlab vs TRL defaults", ours["wall"], "s", "TRL defaults",
                         round(base["wall"], 2), lower_is_better=True)
            print(f"{name + ' training FLOP/s / matmul peak (alignlab)':<44} {100 * ours['rate'] / best_peak:12.2f} % "
                  f"of the best measured peak ({best_peak / 1e9:.0f} GFLOP/s); "
                  f"{100 * ours['rate'] / peaks[(ours['dtype'], ours['threads'])]:.2f} % of the "
                  f"{ours['dtype']} {ours['threads']}-thread peak", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
