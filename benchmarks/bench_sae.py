"""alignlab's sparse-autoencoder trainer against SAELens' (Bloom et al., sae-lens 6.54.12, MIT) on the same activations:
the embedded model's `resid_post.LAYER` over the project's corpus (interp/sae.py), normalized to mean norm sqrt(d).

Both train the standard ReLU SAE with the same loss (summed squared error + l1 * sum_i f_i ||W_dec,i||, the L1
coefficient warmed up linearly), Adam at the same learning rate, the same batches, steps and seed; SAELens' side is
its `StandardTrainingSAE.training_forward_pass` fed the precomputed tensors (its runner would re-read the model
through transformer-lens). Each SAE is then measured by the same code (`sae.recon_metrics`, `sae.ce_losses`) on the
held-out texts. Figures: time per step (ratio to SAELens), explained variance, L0, dead share, CE loss recovered.

SAELens brings ~40 packages (transformer-lens, wandb, plotly, ...), so it lives in .venv-sae (`make bench-sae`),
which sees .venv's packages through a .pth file and adds only its own; this script runs its arm there.

Run: .venv/bin/python benchmarks/bench_sae.py [--layer 9] [--texts 300] [--steps 600] [--expansion 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, figure, pin  # noqa: E402

SAE_VENV = REPO / ".venv-sae" / "bin" / "python"


def saelens_arm(acts_file: str, out_file: str, steps: int, batch: int, lr: float, l1: float, warm: int,
                expansion: int, seed: int) -> None:
    """Runs inside .venv-sae: SAELens' training SAE on the normalized training activations; saves its weights."""
    import torch
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = torch.load(acts_file)
    x_all = data["train"] * data["scale"]
    d = x_all.shape[1]
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d, d_sae=expansion * d, l1_coefficient=l1,
                                                        l1_warm_up_steps=warm))
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (batch,), generator=g)
        coeff = l1 * min(1.0, (step + 1) / warm)
        out = sae.training_forward_pass(TrainStepInput(sae_in=x_all[idx], coefficients={"l1": coeff},
                                                       dead_neuron_mask=None, n_training_steps=step,
                                                       is_logging_step=False))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    step_ms = 1000 * (time.perf_counter() - started) / steps
    torch.save({"W_enc": sae.W_enc.detach(), "b_enc": sae.b_enc.detach(), "W_dec": sae.W_dec.detach(),
                "b_dec": sae.b_dec.detach(), "step_ms": step_ms}, out_file)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=9)
    ap.add_argument("--texts", type=int, default=300, help="texts per split (0: all)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--expansion", type=int, default=4)
    ap.add_argument("--l1", type=float, default=5.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--saelens-arm", nargs=2, metavar=("ACTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    warm = max(1, int(0.1 * args.steps))
    if args.saelens_arm:
        saelens_arm(*args.saelens_arm, args.steps, args.batch, args.lr, args.l1, warm, args.expansion, args.seed)
        return 0
    if not SAE_VENV.exists():
        print("SAELens' venv is missing: run `make bench-sae` (it builds .venv-sae)", file=sys.stderr)
        return 2
    import torch

    from alignlab.interp import sae as S
    from alignlab.lm.models import load

    pin(sorted(os.sched_getaffinity(0))[:1], 1)  # inherited by the SAELens arm's process; machine line twice
    model, tok = load("embedded")
    texts = S.corpus(args.texts)
    ids = {k: S.encode(tok, v, 48) for k, v in texts.items()}
    started = time.perf_counter()
    train, _ = S.activations(model, tok, ids["train"], args.layer)
    test, _ = S.activations(model, tok, ids["test"], args.layer)
    print(f"activations: resid_post.{args.layer}, {len(train)} training and {len(test)} held-out tokens of "
          f"{len(ids['train'])} + {len(ids['test'])} texts, read in {time.perf_counter() - started:.1f} s")
    settings = S.SAESettings(layer=args.layer, expansion=args.expansion, l1=args.l1, lr=args.lr, steps=args.steps,
                             batch_tokens=args.batch, seed=args.seed)
    ours, info = S.train(train, settings)
    with tempfile.TemporaryDirectory() as tmp:
        acts_file, out_file = str(Path(tmp) / "acts.pt"), str(Path(tmp) / "saelens.pt")
        torch.save({"train": train, "scale": ours.scale}, acts_file)
        proc = subprocess.run([str(SAE_VENV), __file__, "--saelens-arm", acts_file, out_file,
                               *(f"--{k}={v}" for k, v in (("steps", args.steps), ("batch", args.batch),
                                                           ("expansion", args.expansion), ("l1", args.l1),
                                                           ("lr", args.lr), ("seed", args.seed)))],
                              capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        theirs_w = torch.load(out_file)
    theirs = S.SAE(train.shape[1], args.expansion * train.shape[1], scale=ours.scale)
    for k in ("W_enc", "b_enc", "W_dec", "b_dec"):
        setattr(theirs, k, theirs_w[k])
    results = {}
    for name, sae in (("alignlab", ours), ("sae-lens", theirs)):
        m = S.recon_metrics(sae, test, train)
        m.update(S.ce_losses(model, tok, ids["test"], args.layer, sae))
        results[name] = m
    results["alignlab"]["step_ms"], results["sae-lens"]["step_ms"] = info["step_ms"], theirs_w["step_ms"]
    print(f"{args.steps} steps of {args.batch} tokens, d_sae {args.expansion * train.shape[1]}, l1 {args.l1}, "
          f"lr {args.lr}; measured on the held-out tokens by the same code")
    a, b = results["alignlab"], results["sae-lens"]
    figure("time per training step", a["step_ms"], "ms", "sae-lens", b["step_ms"], lower_is_better=True)
    figure("explained variance (held out)", a["explained_variance"], "", "sae-lens", b["explained_variance"], False)
    figure("CE loss recovered (held out)", a["ce_recovered"], "", "sae-lens", b["ce_recovered"], False)
    figure("L0 (active features per token)", a["l0"], "", "sae-lens", b["l0"], lower_is_better=True)
    figure("dead feature share", a["dead_share"], "", "sae-lens", b["dead_share"], lower_is_better=True)
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
