"""The preference-reward and assisted-rater techniques: a learned reward in the `reward` slot (Christiano et al.
2017; Leike et al. 2018)."""

import numpy as np
import pytest

from alignlab.agents.base import tabular_model
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.technique import make_technique
from alignlab.envs.rollout import exact_policy_value


def _policy_value(env_name, spec, seed=0):
    env = registry.make("env", env_name)
    shaped = make_technique(spec).apply(env, seed=seed)
    agent = registry.get("agent", "value-iteration").with_pressure(None)
    agent.train(shaped, seed)
    model = tabular_model(env)
    return shaped, exact_policy_value(model, agent.tabular_policy(model))


def test_the_learned_reward_replaces_the_specified_one_and_fixes_the_boat_race():
    shaped, value = _policy_value("boat-race-v0", "preference-reward(comparisons=300)")
    assert shaped.learned.comparisons == 300
    assert value["intended"] >= 80  # the specified reward's optimum laps back and forth: intended 0
    obs, _ = shaped.reset(seed=0)
    _, reward, *_ , info = shaped.step(3)
    assert "unshaped_reward" in info and reward != info["unshaped_reward"]


def test_the_assisted_rater_is_not_fooled_where_the_camera_rater_can_be():
    _, helped = _policy_value("grasp-camera-v0", "assisted-rater(comparisons=200, coverage=1)")
    assert helped["specified"] - helped["intended"] <= 1  # what the camera shows is what happens


def test_support_and_refusals():
    pref, camera, helped = (make_technique(s) for s in ("preference-reward", "preference-reward(rater=camera)",
                                                        "assisted-rater"))
    assert pref.supports({"env": "boat-race-v0"}) is None
    assert "grasp-camera" in camera.supports({"env": "boat-race-v0"})
    assert helped.supports({"env": "grasp-camera-v0"}) is None and helped.supports({"env": "boat-race-v0"})
    assert "no registered environment" in pref.supports({})
    with pytest.raises(ConfigError, match="coverage"):
        make_technique("assisted-rater(coverage=2)")
    with pytest.raises(ConfigError):
        make_technique("preference-reward(comparisons=0)")
    with pytest.raises(ConfigError):
        make_technique("preference-reward(rater=oracle)")


def test_the_seed_changes_the_queries_but_not_the_outcome_on_an_easy_case():
    a, _ = _policy_value("rocks-diamonds-level1-v0", "preference-reward(comparisons=50)", seed=1)
    b, _ = _policy_value("rocks-diamonds-level1-v0", "preference-reward(comparisons=50)", seed=2)
    assert not np.allclose(a.tabular().specified, b.tabular().specified)
