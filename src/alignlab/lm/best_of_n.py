"""Best-of-n sampling against a reward model, estimated for every n from one pool of samples.

Best-of-n draws n responses from the initial policy and keeps the one the proxy reward model
scores highest (Nakano et al. 2021, arXiv:2112.09332; Gao, Schulman, Hilton 2022,
arXiv:2210.10760). From one pool of N samples per prompt, the expected value of any
attribute (gold reward, proxy score, length) of the best-of-n choice is estimated without
bias for every n <= N by order statistics: sorted by proxy ascending, the i-th of N is the
maximum of a uniformly random n-subset with probability C(i-1, n-1) / C(N, n) (the
U-statistic of Gao et al.'s appendix). KL(best-of-n || policy) = log n - (n-1)/n, an upper
bound that is tight for continuous rewards (Beirami et al. 2024, arXiv:2401.01879).

Also the KL-regularised optimum pi_beta(y) proportional to pi_0(y) exp(r(y)/beta), the policy
that RL with a KL penalty beta converges to (Korbak, Perez, Buckley 2022, arXiv:2205.11275;
Rafailov et al. 2023, eq. 4), estimated on the same pool by self-normalised weights.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.special import gammaln


def bon_kl(n: int | np.ndarray) -> np.ndarray:
    """Analytic KL(best-of-n || initial policy) = log n - (n-1)/n, in nats."""
    n = np.asarray(n, dtype=float)
    return np.log(n) - (n - 1) / n


def bon_weights(pool_size: int, n: int) -> np.ndarray:
    """w[i] = P(the (i+1)-th smallest of `pool_size` is the maximum of a random n-subset)."""
    if not 1 <= n <= pool_size:
        raise ValueError(f"n must be in 1..{pool_size} (got {n})")
    i = np.arange(1, pool_size + 1)
    w = np.zeros(pool_size)
    ok = i >= n
    # log C(i-1, n-1) - log C(N, n)
    logw = (gammaln(i[ok]) - gammaln(n) - gammaln(i[ok] - n + 1)
            - (gammaln(pool_size + 1) - gammaln(n + 1) - gammaln(pool_size - n + 1)))
    w[ok] = np.exp(logw)
    return w / w.sum()


def best_of_n(proxy: np.ndarray, values: dict[str, np.ndarray], ns: Sequence[int],
              rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Unbiased E[value of the best-of-n choice] for each n, averaged over prompts.

    proxy: [P, N] proxy scores of N samples for each of P prompts; values: name -> [P, N]
    attributes of the same samples. Ties in the proxy are broken at random (by `rng`).
    Returns name -> [len(ns)] means over prompts, plus 'proxy'.
    """
    proxy = np.asarray(proxy, float)
    P, N = proxy.shape
    rng = rng or np.random.default_rng(0)
    jitter = rng.random(proxy.shape)
    order = np.lexsort((jitter, proxy), axis=1)  # ascending proxy, random among ties
    sorted_vals = {k: np.take_along_axis(np.asarray(v, float), order, axis=1) for k, v in values.items()}
    sorted_vals["proxy"] = np.take_along_axis(proxy, order, axis=1)
    out = {k: np.empty(len(ns)) for k in sorted_vals}
    for j, n in enumerate(ns):
        w = bon_weights(N, int(n))
        for k, v in sorted_vals.items():
            out[k][j] = float((v @ w).mean())
    return out


def tilted(proxy: np.ndarray, values: dict[str, np.ndarray], betas: Sequence[float]) -> dict[str, np.ndarray]:
    """The KL-regularised optimum pi_0 exp(r / beta) on the pool, for each KL coefficient beta.

    Per prompt, weights w_i proportional to exp(r_i / beta) over its N samples; KL is
    sum_i w_i log(N w_i) (exact for the pool's empirical policy, at most log N). Returns
    name -> [len(betas)] means over prompts, plus 'proxy' and 'kl'.
    """
    proxy = np.asarray(proxy, float)
    P, N = proxy.shape
    out = {k: np.empty(len(betas)) for k in [*values, "proxy", "kl"]}
    for j, beta in enumerate(betas):
        logits = proxy / float(beta)
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(w > 0, w * np.log(N * w), 0.0).sum(axis=1)
        out["kl"][j] = float(kl.mean())
        out["proxy"][j] = float((w * proxy).sum(axis=1).mean())
        for k, v in values.items():
            out[k][j] = float((w * np.asarray(v, float)).sum(axis=1).mean())
    return out


def default_ns(pool_size: int) -> list[int]:
    """1, 2, 4, ... up to the pool size (the pool size itself included)."""
    ns = [2**k for k in range(int(math.log2(pool_size)) + 1)]
    return ns if ns[-1] == pool_size else ns + [pool_size]


# -- sampling the pool ----------------------------------------------------------------------

def sample(model: Any, tokenizer: Any, prompts: Sequence[str], n_samples: int, max_new_tokens: int = 32,
           temperature: float = 0.8, top_p: float = 0.95, seed: int = 0, batch_size: int = 128,
           progress=None) -> list[list[list[int]]]:
    """n_samples sampled completions (token ids, cut after the first end-of-turn) per rendered prompt.

    Batches hold copies of one or a few prompts (KV cache via `model.generate`), each distinct prompt
    prefilled once (`sampling.shared_prefill`); seeded per batch, so the pool is reproducible; the global
    torch RNG is left as it was.
    """
    import torch

    from alignlab.lm.sampling import sampling_kwargs, shared_prefill

    eos = {int(tokenizer.eos_token_id)}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    for e in (gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]):
        if e is not None:
            eos.add(int(e))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    jobs = [(p, k) for p in range(len(prompts)) for k in range(n_samples)]
    out: list[list[list[int]]] = [[None] * n_samples for _ in prompts]  # type: ignore[list-item]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for b, start in enumerate(range(0, len(jobs), batch_size)):
        chunk = jobs[start:start + batch_size]
        width = max(len(encoded[p]) for p, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (p, _) in enumerate(chunk):
            n = len(encoded[p])
            ids[row, width - n:] = torch.tensor(encoded[p])
            mask[row, width - n:] = 1
        ids, mask = ids.to(model.device), mask.to(model.device)  # a no-op on the CPU
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(seed * 1_000_003 + b)
            cache = shared_prefill(model, ids, mask) if width > 1 else None
            seqs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  pad_token_id=pad, eos_token_id=sorted(eos), past_key_values=cache,
                                  **sampling_kwargs(temperature, top_p))
        for row, (p, k) in enumerate(chunk):
            toks = seqs[row, width:].tolist()
            end = next((i for i, t in enumerate(toks) if t in eos), None)
            out[p][k] = toks if end is None else toks[:end + 1]
        if progress:
            progress(min(start + batch_size, len(jobs)), len(jobs))
    return out
