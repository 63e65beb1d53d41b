"""Always-watched reward: train with the supervisor's penalty whether or not the supervisor is present,
so behaviour cannot pay off by depending on being watched (Leike et al. 2017, "AI Safety Gridworlds",
arXiv:1711.09883, the absent-supervisor environment and its discussion of supervision-invariant training)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import NoConfig, Technique
from alignlab.techniques._shaping import ShapedRewardEnv, model_or_reason

FLAG = "supervisor"
"""The per-step info key an environment reports the supervision bit under (what the agent is told)."""


def watched_twins(env: gym.Env) -> tuple[np.ndarray, np.ndarray] | str:
    """(twin [S], watched [S]): for every state the index of the same situation with the supervisor
    present, and whether the state is watched; or why there is none. Supervision is read from the
    info the environment reports on each step; the cue is the observation cells in which the watched
    and unwatched initial states differ, and a state's twin is the watched state whose observation
    matches it outside those cells."""
    model, reason = model_or_reason(env)
    if model is None:
        return reason or "no tabular model"
    tab = getattr(env.unwrapped, "_tabulated", lambda: None)()
    if tab is None or FLAG not in tab.info or model.obs is None:
        return f"{type(env.unwrapped).__name__} does not report a supervision bit (info[{FLAG!r}])"
    values, present = tab.info[FLAG]
    starts = [s for s in np.flatnonzero(model.initial > 0) if present[s].any()]
    on = [s for s in starts if values[s][present[s]].any()]
    off = [s for s in starts if not values[s][present[s]].any()]
    if not on or not off:
        return "the supervisor is never (or always) present at the start"
    cue = model.obs[on[0]] != model.obs[off[0]]
    # Every state, terminal ones included (they report no info), is watched if it shows the cue.
    watched = np.array([np.array_equal(model.obs[s][cue], model.obs[on[0]][cue]) for s in range(model.n_states)])
    keys = {model.obs[s][~cue].tobytes(): s for s in range(model.n_states) if watched[s]}
    twin = np.arange(model.n_states)
    for s in np.flatnonzero(~watched):
        key = model.obs[s][~cue].tobytes()
        if key not in keys:
            return "an unwatched state has no watched counterpart"
        twin[s] = keys[key]
    return twin, watched


@register("technique", "always-watched-v0")
class AlwaysWatched(Technique):
    slot = "reward"
    title = "Always-watched reward (the supervisor's penalty regardless of supervision)"
    summary = ("Replaces the specified reward of every unwatched step by the reward the same step earns when the "
               "supervisor is present, so nothing the supervisor would punish pays off unwatched. Needs an "
               "environment that reports the supervision bit in its step info and has a tabular model; the "
               "supervisor's cue is found as what differs between the watched and unwatched starts.")
    source = "Leike et al. 2017, \"AI Safety Gridworlds\", arXiv:1711.09883 (absent supervisor)"
    Config = NoConfig

    def supports(self, target: dict[str, Any]) -> str | None:
        name = target.get("env")
        if not name or registry.resolve_or_none("env", name) is None:
            return "no registered environment in this cell"
        return self.applicable(registry.make("env", name))

    def applicable(self, env: gym.Env) -> str | None:
        found = watched_twins(env)
        return found if isinstance(found, str) else None

    def apply(self, env: gym.Env, **context: Any) -> gym.Env:
        found = watched_twins(env)
        if isinstance(found, str):
            raise ConfigError(f"{self.registered_name}: {found}")
        twin, _ = found
        model, _ = model_or_reason(env)
        return ShapedRewardEnv(env, model, model.specified[twin], label=self.registered_name)
