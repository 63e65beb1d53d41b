"""phase-transitions-v0: the switch label, the detectors' inputs, and the rocks-and-diamonds switch."""

from __future__ import annotations

from collections import Counter

import pytest

from alignlab.core.errors import ConfigError
from alignlab.experiments.phase_transitions import PhaseTransitions, PhaseTransitionsConfig, switches, \
    total_variation


def test_switch_label_needs_a_drop_in_intended_with_the_proxy_not_falling():
    assert switches([0, 1, 2], [10, 10, 0], 0.1) == [False, True]
    assert switches([0, 2, 1], [10, 10, 0], 0.1) == [False, False]  # the proxy fell too: not gaming


def test_total_variation():
    assert total_variation(Counter(a=2), Counter(a=5)) == 0.0
    assert total_variation(Counter(a=1), Counter(b=1)) == 1.0


def test_rocks_diamonds_switch_is_found_and_flagged_by_the_proxy_jump(tmp_path):
    exp = PhaseTransitions(PhaseTransitionsConfig(envs=("rocks-diamonds-level1-v0",), horizons=(4, 5, 6, 8),
                                                  rollouts=2))
    r = exp.run_cell(exp.cells()[0], 0, tmp_path)
    assert r.data["switch"] == [False, True, False]
    assert r.metrics["proxy-jump_hits"] == 1.0


def test_horizons_must_increase():
    with pytest.raises(ConfigError, match="increasing"):
        PhaseTransitionsConfig(horizons=(3, 2))
