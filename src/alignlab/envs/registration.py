"""One call registers an environment with alignlab's registry and with Gymnasium, so
`gymnasium.make("alignlab/<name>")`, `gymnasium.make_vec(...)` and stable-baselines3 work
unchanged after `import alignlab.envs`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from alignlab.core.registry import register

GYM_NAMESPACE = "alignlab"


def register_env(name: str, env_cls: type, vector_cls: type | None = None,
                 max_episode_steps: int | None = None, **kwargs: Any) -> None:
    """Register `env_cls` as alignlab env `name` (e.g. 'boat-race-v0') and as the Gymnasium
    id 'alignlab/<name>'; `vector_cls(num_envs=..., **kwargs)` is its native vector env.
    With `kwargs` (a preset such as another level), alignlab's registry gets a subclass
    whose constructor defaults to them, so `make("env", name)` builds the same env."""
    if kwargs:
        base, preset = env_cls, dict(kwargs)

        def __init__(self, *args: Any, **kw: Any) -> None:
            base.__init__(self, *args, **{**preset, **kw})

        env_cls = type(f"{base.__name__}[{name}]", (base,), {
            "__init__": __init__, "__doc__": base.__doc__, "__module__": base.__module__})
    register("env", name)(env_cls)
    gym_id = f"{GYM_NAMESPACE}/{name}"
    if gym_id in gym.registry:
        return
    gym.register(
        id=gym_id,
        entry_point=env_cls,
        vector_entry_point=vector_cls,
        max_episode_steps=max_episode_steps,
        kwargs=kwargs,
    )
