"""Language-model FLOP/s as a fraction of this machine's matmul peak, measured in the same run: batched and batch-1
generation (llama.cpp single-stream beside batch 1), one DPO step (Rafailov et al. 2023, arXiv:2305.18290) and one
Bradley-Terry reward-model step (Ouyang et al. 2022, arXiv:2203.02155), both through TRL as alignlab runs them.

Every arm runs in this one process (llama.cpp in a child that inherits the pinning), on the same core(s) with the same
thread count (`--cores`, `--threads`); the machine line (CPU, dtype flags, load) is printed before and after. Peak:
best `torch.matmul` on 2048^3 in float32 and, where bf16 is native (`lm.models.native_bf16`), in bfloat16, before and
after the arms (the best seen is used, so the fractions are not flattered). Each figure is divided by the peak of
the dtype it runs in.

FLOPs counted (the model-FLOPs convention of Kaplan et al. 2020, arXiv:2001.08361: 2 x weights x tokens for a
forward, 6 x for forward and backward):
- generation: per generated token 2 x the weights of every Linear (the tied LM head included; embeddings are lookups)
  plus attention, 4 x layers x heads x head_dim x the context it attends to (`bench_generation.generation_flops`);
  prompt tokens' FLOPs are not counted, their time is. EOS ignored: every prompt decodes exactly max_new_tokens.
- training, per backbone forward over B x T token positions (padding included), k x (N_body x B T + N_head x H),
  k = 6 under autograd (the trained forward and its backward), 2 without (the DPO reference model's forward, counted);
  N_body = the Linear weights outside the head; the LM head (vocab x d) is projected on H = B (T - 1) positions (TRL's
  fused DPO head skips each row's last), the reward model's score head (1 x d) on B T. Not counted: attention scores
  (a few % at these lengths), gradient-checkpointing recompute (where on: DPOSettings and train_trl_reward_model
  turn it on only for models above 2 GB of weights), the optimizer.
  Step time: Trainer callback from step begin to step end (data collation and logging outside), after a warm-up step.
  Both steps in bf16 autocast where bf16 is native (DPOSettings' default; train_trl_reward_model's own default is
  fp32, so the reward model is given bf16=native_bf16() here), fp32 otherwise.
Targets: DPO and reward-model steps >= 0.50 of the bf16 peak (on a CPU with native bf16; otherwise reported against
the fp32 peak, no target); batch-1 decoding >= 0.5x llama.cpp single stream on the same prompts (llama.cpp from
.venv-anchors, only for the embedded model: its GGUF); generation: the fraction of peak is printed, no target.
The target is checked on the default (eager `BatchDecoder`) batch-1 path. Beside it, unless `--no-compiled`, the
opt-in compiled batch-1 step (`lm.compiled_step`, TorchInductor): its compile time printed apart (not in tok/s), its
rate and ratio to llama.cpp, and how many of its greedy outputs equal the default path's (40 tokens EOS ignored, and
replies stopped at EOS).

Run: .venv/bin/python benchmarks/bench_lm_flops.py [--threads 1] [--cores 0] [--quick] [--model embedded|FOLDER]
[--skip-gen | --skip-train]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _util import figure, matmul_peak, parse_cores, pin

DPO_TARGET = 0.50
BATCH1_TARGET = 0.5


def training_flops(n_body: int, n_head: int, forwards: list[tuple[int, int, bool]], head: str) -> float:
    """FLOPs of one training step from its backbone forwards, each (rows B, positions T, under autograd):
    k (N_body B T + N_head H), k = 6 with gradients and 2 without; H = B (T - 1) for the LM head ('lm', TRL's fused
    DPO head), B T for a score head ('score')."""
    total = 0.0
    for rows, length, grad in forwards:
        heads = rows * (length - 1) if head == "lm" else rows * length
        total += (6 if grad else 2) * (n_body * rows * length + n_head * heads)
    return total


class StepProbe:
    """Time Trainer steps and record each backbone forward of a step: a global forward hook on the input
    embedding (every forward of the policy, reference or reward model starts there, under the step's grad mode)."""

    def __init__(self, vocab: int):
        self.vocab = vocab
        self.steps: list[tuple[float, list[tuple[int, int, bool]]]] = []
        self._forwards: list[tuple[int, int, bool]] = []
        self._started = 0.0

    def hook(self, module, args, output):
        import torch

        if isinstance(module, torch.nn.Embedding) and module.num_embeddings >= self.vocab and output.dim() == 3:
            self._forwards.append((int(output.shape[0]), int(output.shape[1]), torch.is_grad_enabled()))

    def begin(self) -> None:
        self._forwards, self._started = [], time.perf_counter()

    def end(self) -> None:
        self.steps.append((time.perf_counter() - self._started, self._forwards))

    def callback(self):
        """A TrainerCallback class calling `begin` / `end` at each step's begin / end."""
        from transformers import TrainerCallback

        probe = self

        class StepTimer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                probe.begin()

            def on_step_end(self, args, state, control, **kw):
                probe.end()

        return StepTimer

    def run(self, fn) -> list[tuple[float, list[tuple[int, int, bool]]]]:
        """Run a training function with the probe installed (every Trainer gets the timer); its steps."""
        import torch
        import transformers.trainer as hf_trainer

        self.steps = []
        timer = self.callback()
        hf_trainer.DEFAULT_CALLBACKS.append(timer)
        handle = torch.nn.modules.module.register_module_forward_hook(self.hook)
        try:
            fn()
        finally:
            handle.remove()
            hf_trainer.DEFAULT_CALLBACKS.remove(timer)
        return self.steps


def train_arms(path: str, threads: int, steps: int, pairs: int, max_length: int, n_body: int, n_head: int,
               vocab: int, bf16: bool) -> dict[str, tuple[float, float, int]]:
    """One DPO run and one reward-model run of 1 + `steps` steps; per arm (mean seconds per timed step, FLOPs per
    step, token positions per step)."""
    import dataclasses

    from alignlab.lm import dpo
    from alignlab.rewards.reward_models import train_trl_reward_model

    import bench_rlhf_train  # its DPO comparisons (12 topics, a helpful vs a dismissive answer)

    os.environ["OMP_NUM_THREADS"] = str(threads)  # that module pops it at import, for its TRL-defaults arm
    data = bench_rlhf_train.dpo_data(pairs * (steps + 1))
    tmp = tempfile.mkdtemp(prefix="alignlab-bench-flops-")
    settings = dataclasses.replace(dpo.DPOSettings(), threads=threads, batch_size=pairs, max_steps=steps + 1,
                                   max_length=max_length, bf16=bf16)
    probe = StepProbe(vocab)
    out = {}
    for name, head, fn in [
        ("DPO", "lm", lambda: dpo.train(path, data, f"{tmp}/dpo", settings)),
        ("reward model", "score", lambda: train_trl_reward_model(path, data, f"{tmp}/rm", max_steps=steps + 1,
                                                                 batch_size=pairs, max_length=max_length, bf16=bf16,
                                                                 threads=threads)),
    ]:
        recorded = probe.run(fn)[1:]  # the first step warms up
        if not recorded:
            raise RuntimeError(f"{name}: no timed step recorded")
        seconds = sum(s for s, _ in recorded) / len(recorded)
        head_weights = n_head if head == "lm" else hidden_of(path)  # the score head: Linear(d, 1)
        flops = sum(training_flops(n_body, head_weights, f, head) for _, f in recorded) / len(recorded)
        tokens = sum(b * t for _, f in recorded for b, t, _ in f) // len(recorded)
        out[name] = (seconds, flops, tokens)
        print(f"  {name:<14} {seconds:7.3f} s/step  {flops / 1e9:9.1f} GFLOP/step  {tokens} token positions/step "
              f"(forwards: {recorded[-1][1]})", flush=True)
    return out


def hidden_of(path: str) -> int:
    """d_model of the model folder (the reward model's score head has d weights)."""
    import json

    with open(os.path.join(path, "config.json")) as fh:
        return int(json.load(fh)["hidden_size"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads of every arm (torch and llama.cpp)")
    parser.add_argument("--cores", default="", help="cores every arm is pinned to (default: the first THREADS)")
    parser.add_argument("--model", default="embedded", help="'embedded' or a local safetensors Llama folder")
    parser.add_argument("--batch", type=int, default=64, help="decoding batch of the batched-generation arm")
    parser.add_argument("--single", type=int, default=8, help="prompts of the batch-1 arm (and of llama.cpp)")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the generation arms; best kept")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per arm (after 1 warm-up)")
    parser.add_argument("--pairs", type=int, default=4, help="comparisons per training step (DPOSettings' batch)")
    parser.add_argument("--max-length", type=int, default=128, help="training sequence cap (DPOSettings')")
    parser.add_argument("--skip-train", action="store_true", help="generation arms only")
    parser.add_argument("--skip-gen", action="store_true", help="training arms only (no generation, no llama.cpp)")
    parser.add_argument("--no-compiled", action="store_true",
                        help="skip the opt-in compiled batch-1 arm (lm.compiled_step; compiling takes minutes cold)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test (figures meaningless)")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.single, args.max_new_tokens, args.rounds, args.steps, args.pairs = 4, 2, 4, 1, 1, 2
        args.no_compiled = True  # a cold compile takes minutes
    for name in ("threads", "batch", "single", "max_new_tokens", "rounds", "steps", "pairs", "max_length"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')} {getattr(args, name)}: must be a positive integer", file=sys.stderr)
            return 2
    if args.skip_gen and args.skip_train:
        print("--skip-gen with --skip-train leaves no arm to run: give at most one of them", file=sys.stderr)
        return 2
    cores = pin(parse_cores(args.cores), args.threads)

    import torch

    import bench_generation as gen
    from alignlab.core.errors import UserError
    from alignlab.lm import compiled_step
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.generate import _eos_ids
    from alignlab.lm.models import EMBEDDED, ModelSpec, embedded_gguf, native_bf16, resolve_dtype, resolve_path

    bf16 = native_bf16()
    dtype = resolve_dtype("auto")
    try:
        chat = LocalChatModel.load(ModelSpec(args.model, dtype=dtype, threads=args.threads))
    except UserError as exc:
        print(f"--model: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    model, tok = chat.model, chat.tokenizer
    dtypes = ["float32"] + (["bfloat16"] if bf16 else [])
    peaks = {d: matmul_peak(d) for d in dtypes}
    print("matmul peak (2048^3, best of 5, before): " + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in
                                                                   peaks.items()), flush=True)
    params, attn = gen.matrix_params(model), gen.attention_flops(model)
    n_head = model.get_output_embeddings().weight.numel()
    print(f"model {args.model} ({dtype} weights); {params / 1e6:.1f} M Linear weights per token "
          f"({n_head / 1e6:.1f} M of them the LM head); native bf16: {bf16}", flush=True)

    prompts = gen.first_turn_prompts(tok, max(args.batch, args.single))
    arms = [(f"batch {args.batch}", args.batch, prompts[:args.batch]), ("batch 1", 1, prompts[:args.single])]
    if not args.no_compiled and not args.skip_gen:
        arms.append(("batch 1 compiled", 1, prompts[:args.single]))
        longest = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts[:args.single])
        compiled_step.enable(True)
        started = time.perf_counter()
        ready = compiled_step.CompiledDecoder.create(model, 1, longest + args.max_new_tokens) is not None
        compiled_step.enable(False)
        print(f"compiled batch-1 step (lm.compiled_step): compile and first step {time.perf_counter() - started:.1f} s"
              f" (excluded from tok/s){'' if ready else '; not available (model or compiler), the arm runs eagerly'}",
              flush=True)
    best: dict[str, tuple[float, float, int]] = {}  # arm -> (seconds, FLOPs, generated tokens)
    texts: dict[str, list[str]] = {}
    for _ in range(0 if args.skip_gen else args.rounds):
        for name, batch, subset in arms:
            compiled_step.enable(name.endswith("compiled"))
            seconds, gens = gen.ours(model, tok, subset, batch, args.max_new_tokens, stop=False)
            flops = gen.generation_flops(params, attn, [(g.prompt_tokens, g.completion_tokens) for g in gens])
            n = sum(g.completion_tokens for g in gens)
            texts[name] = [g.text for g in gens]
            print(f"  alignlab {name:<16} {n / seconds:9.1f} tok/s  {flops / seconds / 1e9:8.2f} GFLOP/s", flush=True)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, flops, n)
    compiled_step.enable(False)
    if "batch 1 compiled" in texts:
        replies = {}
        for on in (False, True):  # the replies an eval sees: stop at the end of the turn
            compiled_step.enable(on)
            replies[on] = [g.text for g in gen.ours(model, tok, prompts[:args.single], 1, args.max_new_tokens,
                                                    stop=True)[1]]
        compiled_step.enable(False)
        full = sum(a == b for a, b in zip(texts["batch 1"], texts["batch 1 compiled"]))
        stop = sum(a == b for a, b in zip(replies[False], replies[True]))
        print(f"greedy outputs of the compiled batch-1 step identical to the eager (default) path: "
              f"{full}/{args.single} over {args.max_new_tokens} tokens (EOS ignored), {stop}/{args.single} replies "
              "(stop at EOS)", flush=True)
    anchor = None
    if args.skip_gen:
        print("  generation and llama.cpp: skipped (--skip-gen)")
    elif args.model == EMBEDDED:
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[:args.single]]
        job = {"gguf": str(embedded_gguf()), "n_ctx": 2048, "threads": args.threads, "cores": cores,
               "eos": sorted(_eos_ids(model, tok)),
               "sets": [{"name": "length", "prompts": ids, "max_new_tokens": args.max_new_tokens, "stop": False}]}
        for _ in range(args.rounds):
            result = gen.run_llamacpp(job)
            if result is None:
                break
            r = result["results"][0]
            seconds, n = sum(r["seconds"]), sum(map(len, r["outputs"]))
            anchor = n / seconds if anchor is None else max(anchor, n / seconds)
            print(f"  llama.cpp {result['version']} single stream {n / seconds:9.1f} tok/s", flush=True)
    else:
        print("  llama.cpp: not run (its GGUF is the embedded model's; --model is another)")

    training = {}
    if not args.skip_train:
        path = resolve_path(args.model)
        training = train_arms(path, args.threads, args.steps, args.pairs, args.max_length, params - n_head, n_head,
                              model.config.vocab_size, bf16)
    for d in dtypes:
        peaks[d] = max(peaks[d], matmul_peak(d))
    print("matmul peak, best of before and after: " + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s"
                                                                 for d, v in peaks.items()))

    print(f"\n{'arm':<30} {'seconds':>8} {'tok/s':>9} {'GFLOP/s':>9} {'peak dtype':>10} {'fraction of peak':>17}")
    gen_peak = peaks["bfloat16" if dtype == "bfloat16" else "float32"]
    for name, (seconds, flops, n) in best.items():
        print(f"{'generation ' + name:<30} {seconds:8.3f} {n / seconds:9.1f} {flops / seconds / 1e9:9.2f} "
              f"{dtype:>10} {flops / seconds / gen_peak:17.4f}")
    train_dtype = "bfloat16" if bf16 else "float32"
    for name, (seconds, flops, _) in training.items():
        print(f"{name + ' step':<30} {seconds:8.3f} {'':>9} {flops / seconds / 1e9:9.2f} {train_dtype:>10} "
              f"{flops / seconds / peaks[train_dtype]:17.4f}")
    ok = True
    if anchor is not None:
        seconds, _, n = best["batch 1"]
        print(f"batch-1 decoding / llama.cpp single stream: {n / seconds / anchor:.3f}x")
        if "batch 1 compiled" in best:
            c_seconds, _, c_n = best["batch 1 compiled"]
            print(f"compiled batch-1 decoding (opt-in, not output-identical; see above) / llama.cpp single stream: "
                  f"{c_n / c_seconds / anchor:.3f}x; / eager batch 1: {c_n / c_seconds / (n / seconds):.3f}x")
        ok &= figure("batch-1 decoding (tok/s)", n / seconds, "tok/s", f"{BATCH1_TARGET:g}x llama.cpp",
                     BATCH1_TARGET * anchor, lower_is_better=False)
    else:
        print("batch-1 target: llama.cpp anchor not measured (see above); target not checked")
    for name, (seconds, flops, _) in training.items():
        fraction = flops / seconds / peaks[train_dtype]
        if bf16:
            ok &= figure(f"{name} step FLOP/s / bf16 peak", 100 * fraction, "%", "target", 100 * DPO_TARGET,
                         lower_is_better=False)
        else:
            print(f"{name} step FLOP/s / fp32 peak {fraction:.4f} (bf16 not native here: the 0.50-of-bf16-peak "
                  "target applies only on a CPU with native bf16)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
