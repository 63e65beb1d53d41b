"""Simulated raters who compare two trajectory segments, by what they see (Christiano et al. 2017,
arXiv:1706.03741: Bradley-Terry preferences with some labels at random; the grasping robot whose raters saw
only a camera), and a rater assisted by a helper (recursive reward modeling in miniature, Leike et al. 2018,
"Scalable agent alignment via reward modeling", arXiv:1811.07871).

A rater scores each step of a segment by a judgement on her *view* of it, sums the scores, and prefers the
segment with the higher sum under the Bradley-Terry model P(A) = sigmoid((u_A - u_B) / temperature), or
answers "equally good" where the sums are equal; with probability `error_rate` she answers at random. The raters:

- `true`: a human who sees everything and judges by what she wants: a step's score is its intended reward. This
  is the simulated human, the one place (with the evaluation side) that reads the intended objective.
- `camera` (grasp-camera only): she sees the camera image of the step (the hand's and the ball's columns, the
  gripper, which of them is in front; no depth, no touch) and scores 1 when the image shows a closed hand over
  the ball. Nothing else reaches her, so a hand hovering in front of the ball looks like a grasp.
- `assisted`: the camera rater with a helper that watches the segment with the gripper's touch sensor and flags
  the steps where the image shows a grasp but the gripper holds nothing (the events the camera misses). The
  helper inspects each step with probability `coverage`; she scores flagged steps 0.

The technique that learns from a rater receives only its labels.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.envs.base import TabularModel
from alignlab.oversight.pref_data import Transitions

RATERS = ("true", "camera", "assisted")

# The grasp-camera observation: (hand depth, hand column, gripper closed, ball depth, ball column, ball held).
HAND_DEPTH, HAND_COL, CLOSED, BALL_DEPTH, BALL_COL, HELD = range(6)


@dataclasses.dataclass(frozen=True)
class RaterNoise:
    temperature: float = 1.0
    """Bradley-Terry temperature in utility units (0: a deterministic rater)."""
    error_rate: float = 0.1
    """Share of comparisons answered uniformly at random (Christiano et al. assume 10%)."""

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 <= self.error_rate <= 1:
            raise ConfigError(f"rater noise: temperature must be >= 0 and error_rate in [0, 1] (got "
                              f"{self.temperature}, {self.error_rate})")


@dataclasses.dataclass
class Rater:
    """Compares segments (arrays of transition rows) by the summed per-step scores of what she sees."""

    name: str
    step_scores: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    """rows [..., L] -> scores [..., L] (may draw from the generator: what a helper inspects)."""
    noise: RaterNoise = dataclasses.field(default_factory=RaterNoise)

    def utilities(self, segs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.step_scores(segs, rng).sum(-1)

    def compare(self, seg_a: np.ndarray, seg_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Labels [N]: 1.0 where she prefers A, 0.0 where B, 0.5 where she sees no difference (equal scores;
        Christiano et al.'s "equally good" answer). A share `error_rate` of answers are coin flips (0 or 1)."""
        diff = self.utilities(seg_a, rng) - self.utilities(seg_b, rng)
        t = self.noise.temperature
        p = np.where(diff > 0, 1.0, 0.0) if t == 0 else 1 / (1 + np.exp(-diff / t))
        labels = (rng.random(len(p)) < p).astype(np.float64)
        labels[np.abs(diff) < 1e-9] = 0.5
        wrong = rng.random(len(p)) < self.noise.error_rate
        labels[wrong] = (rng.random(int(wrong.sum())) < 0.5).astype(np.float64)
        return labels


# -- what each rater sees -----------------------------------------------------------------------

def is_grasp_camera(model: TabularModel) -> bool:
    return model.obs is not None and model.obs.ndim == 2 and model.obs.shape[1] == 6 and model.n_actions == 6


def camera_image(obs: np.ndarray) -> np.ndarray:
    """[..., 4]: what the grasp-camera's camera shows of observations [..., 6]: the hand's column, the
    gripper, the ball's column, and whether the hand is in front of (or at) the ball where they overlap. The
    depths and the ball-held bit are not in the image."""
    obs = np.asarray(obs)
    overlap = obs[..., HAND_COL] == obs[..., BALL_COL]
    front = overlap & (obs[..., HAND_DEPTH] <= obs[..., BALL_DEPTH])
    return np.stack([obs[..., HAND_COL], obs[..., CLOSED], obs[..., BALL_COL], front], -1).astype(np.int64)


def image_shows_grasp(image: np.ndarray) -> np.ndarray:
    """The camera rater's judgement of one image: a closed hand over the ball."""
    return (image[..., 1] == 1) & (image[..., 3] == 1)


def touch_sensor(obs: np.ndarray) -> np.ndarray:
    """The gripper's touch sensor (the helper's instrument): is something in the closed hand?"""
    obs = np.asarray(obs)
    return (obs[..., CLOSED] == 1) & (obs[..., HELD] == 1)


def _after_obs(trans: Transitions) -> np.ndarray:
    return np.asarray(trans.model.obs)[trans.next_state()]


def true_rater(trans: Transitions, noise: RaterNoise) -> Rater:
    """The simulated human who sees everything: a step scores its intended reward."""
    m = trans.model
    score = m.intended[trans.s, trans.a, trans.k].astype(np.float64)
    score[0] = 0.0
    return Rater("true", lambda rows, rng: score[rows], noise)


def camera_rater(trans: Transitions, noise: RaterNoise) -> Rater:
    """Sees only the camera image after each step; scores 1 where it shows a grasp."""
    if not is_grasp_camera(trans.model):
        raise ConfigError("the camera rater needs the grasp-camera environment (its camera image)")
    score = image_shows_grasp(camera_image(_after_obs(trans))).astype(np.float64)
    score[0] = 0.0
    return Rater("camera", lambda rows, rng: score[rows], noise)


def assisted_rater(trans: Transitions, noise: RaterNoise, coverage: float) -> Rater:
    """The camera rater with a helper that checks each step's touch sensor with probability `coverage` and
    flags a grasp the image shows but the gripper does not feel; flagged steps score 0."""
    if not 0 <= coverage <= 1:
        raise ConfigError(f"assisted rater: coverage must be in [0, 1] (got {coverage})")
    after = _after_obs(trans)
    seen = image_shows_grasp(camera_image(after)).astype(np.float64)
    felt = touch_sensor(after)
    seen[0] = 0.0

    def scores(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        inspected = rng.random(rows.shape) < coverage
        flagged = inspected & (seen[rows] > 0) & ~felt[rows]
        return np.where(flagged, 0.0, seen[rows])

    return Rater(f"assisted(coverage={coverage:g})", scores, noise)


def make_rater(name: str, trans: Transitions, noise: RaterNoise | None = None, coverage: float = 0.5) -> Rater:
    noise = RaterNoise() if noise is None else noise
    if name == "true":
        return true_rater(trans, noise)
    if name == "camera":
        return camera_rater(trans, noise)
    if name == "assisted":
        return assisted_rater(trans, noise, coverage)
    raise ConfigError(f"unknown rater {name!r}; valid: {', '.join(RATERS)}")


def rater_support(name: str, model: TabularModel | None) -> str | None:
    """None if rater `name` can rate segments of `model`, else why not."""
    if name not in RATERS:
        return f"unknown rater {name!r}; valid: {', '.join(RATERS)}"
    if model is None or model.obs is None:
        return "no tabular model with an observation table"
    if name != "true" and not is_grasp_camera(model):
        return f"the {name} rater sees a camera image, which only grasp-camera has"
    return None
