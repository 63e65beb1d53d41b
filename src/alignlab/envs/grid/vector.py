"""Native batched vector envs for gridworlds with an exact tabular model: every copy steps by
flat table lookups in NumPy (no Python loop over copies), with Gymnasium's next-step
autoreset. A specialisation of `alignlab.envs.tabular_vector.TabularVectorEnv` that also
reports the per-step info the single env reports (e.g. safe interruptibility's
`executed_action` and `interrupted`), as Gymnasium vector infos (value array + `_key` mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alignlab.envs.tabular_vector import TabularVectorEnv


class TabularGridVectorEnv(TabularVectorEnv):
    """`num_envs` copies of `env_cls(**kwargs)` stepped together through its tabular model.

    Built with `vector_class(env_cls)`; `gymnasium.make_vec(id, num_envs,
    vectorization_mode="vector_entry_point")` calls it with the registered kwargs.
    """

    env_cls: type | None = None

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None,
                 render_mode: str | None = None, **kwargs: Any):
        if self.env_cls is None:
            raise TypeError("use vector_class(env_cls) to make a vector env class for an environment")
        if max_episode_steps is not None:
            kwargs.setdefault("max_steps", max_episode_steps)
        env = self.env_cls(**kwargs)
        tab = env._tabulated()
        if tab is None:
            raise ValueError(f"{self.env_cls.__name__}{kwargs} has no tabular model; use its dedicated vector env")
        super().__init__(tab.model, num_envs, env.observation_space, env.action_space)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_modes=[])
        m = tab.model
        S, A, K = m.next_state.shape
        self._A, self._K = A, K
        # Flat, contiguous tables: index s * A + a (times K for the successor slot).
        self._next_flat = np.ascontiguousarray(m.next_state.reshape(S * A, K))
        self._spec_flat = np.ascontiguousarray(m.specified.reshape(S * A, K))
        self._int_flat = np.ascontiguousarray(m.intended.reshape(S * A, K))
        self._cum_flat = np.ascontiguousarray(self._cum.reshape(S * A, K))
        self._obs_flat = np.ascontiguousarray(m.obs)
        self._info_flat = {name: (v.reshape(S * A, K), p.reshape(S * A, K)) for name, (v, p) in tab.info.items()}
        self._arange = np.arange(num_envs)

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64)
        idx = self._state * self._A + a
        if self._deterministic:
            nxt = self._next_flat[idx, 0]
            reward = self._spec_flat[idx, 0]
            intended = self._int_flat[idx, 0]
            k = None
        else:
            u = self._np_random.random(self.num_envs)
            k = (u[:, None] >= self._cum_flat[idx]).sum(axis=1)
            np.minimum(k, self._K - 1, out=k)
            nxt = self._next_flat[idx, k]
            reward = self._spec_flat[idx, k]
            intended = self._int_flat[idx, k]
        t = self._t + 1
        resetting = self._needs_reset
        any_reset = bool(resetting.any())
        if any_reset:  # copies that ended on the previous step restart now (next-step autoreset)
            nxt = np.where(resetting, self._sample_initial(self.num_envs), nxt)
            reward = np.where(resetting, 0.0, reward)
            intended = np.where(resetting, 0.0, intended)
            t[resetting] = 0
            terminated = self.model.terminal[nxt] & ~resetting
            truncated = (t >= self.model.horizon) & ~terminated & ~resetting
        else:
            terminated = self.model.terminal[nxt]
            truncated = (t >= self.model.horizon) & ~terminated
        self._state, self._t = nxt, t
        self._needs_reset = terminated | truncated
        self._intended_last = intended
        info: dict[str, Any] = {}
        for name, (values, present) in self._info_flat.items():
            kk = 0 if k is None else k
            val = values[idx, kk]
            mask = present[idx, kk]
            if any_reset:
                mask = mask & ~resetting
            info[name] = val
            info["_" + name] = mask
        return self._obs_flat[nxt], reward, terminated, truncated, info


def vector_class(env_cls: type) -> type:
    """The native vector env class of a gridworld with a tabular model."""
    name = env_cls.__name__.removesuffix("Env") + "VectorEnv"
    return type(name, (TabularGridVectorEnv,), {
        "env_cls": env_cls,
        "__module__": env_cls.__module__,
        "__doc__": f"Native batched vector version of {env_cls.__name__} (table lookups over all copies).",
    })
