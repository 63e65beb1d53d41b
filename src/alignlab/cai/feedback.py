"""RL-CAI's AI feedback: the feedback model's preference between two responses under a sampled comparison principle,
read from the log-probabilities of the choices "(A)" and "(B)" as a soft label (Bai et al. 2022, "Constitutional AI:
Harmlessness from AI Feedback", arXiv:2212.08073, sec. 4.1).

The paper's multiple-choice prompt: the conversation, the principle's question, the options (A) and (B), and the
answer read from the normalised probabilities of the two option tokens. Small models prefer one position whatever
the content, so each pair is asked in both orders and the two probabilities are averaged (P(first better) =
(P_AB(A) + P_BA(B)) / 2); the position bias itself is reported (`position_bias`: mean P("(A)") over all asks,
0.5 = none). A backend that cannot score continuations (an OpenAI-compatible endpoint) answers in words instead:
the first "(A)"/"(B)" of its greedy reply counts as 1 or 0, no option as 0.5 (`unparsed`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from typing import Any, Sequence

from alignlab.cai.constitution import Constitution

TEMPLATE = ("Consider the following conversation between a human and an assistant:\n\nHuman: {prompt}\n\n"
            "{question}\n\nOptions:\n(A) {a}\n(B) {b}\n\nAnswer with (A) or (B).")
OPTIONS = ("(A)", "(B)")


@dataclasses.dataclass
class Preference:
    prompt: str
    first: str
    second: str
    question: str
    p_first: float
    """Probability that the first response is better (the soft label)."""
    p_a: tuple[float, float]
    """P('(A)') in the two orders asked (first as A, then second as A)."""


def _ask(prompt: str, question: str, a: str, b: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": TEMPLATE.format(prompt=prompt, question=question, a=a.strip() or "(empty)",
                                                        b=b.strip() or "(empty)")}]


def _p_a(model: Any, convs: list[list[dict[str, str]]]) -> tuple[list[float], int]:
    """P('(A)') of each conversation, normalised over the two options; and the unparsed replies (chat path)."""
    if not convs:
        return [], 0
    if getattr(model, "supports_logprobs", False):
        la = model.logprobs(convs, [OPTIONS[0]] * len(convs))
        lb = model.logprobs(convs, [OPTIONS[1]] * len(convs))
        return [1.0 / (1.0 + math.exp(max(-60.0, min(60.0, b - a)))) for a, b in zip(la, lb)], 0
    out, unparsed = [], 0
    for text in model.chat(convs, max_new_tokens=6, temperature=0.0, seed=0):
        m = re.search(r"\(?\b([AB])\b\)?", text)
        if m is None:
            unparsed += 1
            out.append(0.5)
        else:
            out.append(1.0 if m.group(1) == "A" else 0.0)
    return out, unparsed


def preferences(model: Any, constitution: Constitution, prompts: Sequence[str], firsts: Sequence[str],
                seconds: Sequence[str], seed: int = 0) -> tuple[list[Preference], dict[str, float]]:
    """Soft labels for each (prompt, first, second): a comparison principle drawn per pair, both orders asked.
    Returns the preferences and stats: position_bias (mean P('(A)')), unparsed (chat replies with no option),
    mean_confidence (mean |p_first - 0.5| * 2)."""
    rng = random.Random(f"rl-cai-{seed}-{constitution.digest}")
    questions = [rng.choice(constitution.questions) for _ in prompts]
    ab = [_ask(p, q, f, s) for p, q, f, s in zip(prompts, questions, firsts, seconds)]
    ba = [_ask(p, q, s, f) for p, q, f, s in zip(prompts, questions, firsts, seconds)]
    pa, unparsed = _p_a(model, ab + ba)
    n = len(prompts)
    prefs = [Preference(p, f, s, q, 0.5 * (pa[i] + (1.0 - pa[n + i])), (pa[i], pa[n + i]))
             for i, (p, f, s, q) in enumerate(zip(prompts, firsts, seconds, questions))]
    stats = {"pairs": float(n), "position_bias": sum(pa) / len(pa) if pa else float("nan"),
             "unparsed": float(unparsed),
             "mean_confidence": sum(abs(x.p_first - 0.5) * 2 for x in prefs) / n if n else float("nan")}
    return prefs, stats


def hard_labels(prefs: Sequence[Preference], min_confidence: float = 0.0
                ) -> tuple[list[tuple[str, str, str]], float]:
    """(prompt, chosen, rejected) from the soft labels, keeping pairs whose |p - 0.5| * 2 >= min_confidence and
    whose two responses differ; and the mean probability that a kept hard label is wrong (min(p, 1 - p)), the
    flip rate robust DPO takes as its label_smoothing."""
    kept, flips = [], []
    for x in prefs:
        if x.first.strip() == x.second.strip() or abs(x.p_first - 0.5) * 2 < min_confidence or x.p_first == 0.5:
            continue
        chosen, rejected = (x.first, x.second) if x.p_first > 0.5 else (x.second, x.first)
        kept.append((x.prompt, chosen, rejected))
        flips.append(min(x.p_first, 1.0 - x.p_first))
    return kept, (sum(flips) / len(flips) if flips else 0.0)
