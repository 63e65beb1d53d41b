"""The digit debate: a sparse judge, exact debaters, and the search checked against exact minimax."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.core.seeding import rng
from alignlab.oversight import debate as D
from alignlab.oversight.debate_game import colex_subsets
from alignlab.vision import digits


@pytest.fixture(scope="module")
def judge4():
    split = digits.load()
    return split, D.train_judge(split.x_train, split.y_train, D.JudgeSettings(k=4, masks_per_image=6, epochs=3), 0)


def test_masks_reveal_k_nonzero_pixels():
    x = digits.load().x_test[:5]
    masks = D.random_masks(x, 4, 3, np.random.default_rng(0)).reshape(5, 3, -1)
    assert (masks.sum(-1) == 4).all()
    assert (np.repeat(x.reshape(5, 1, -1), 3, 1)[masks] > 0).all()
    p = D.planes(x, masks[:, 0])
    assert p.shape == (5, 2, 8, 8) and np.array_equal(p[:, 1] > 0, p[:, 0] > 0)


def test_set_logits_equal_the_judge_on_planes(judge4):
    split, judge = judge4
    img = split.x_test[3]
    pixels = np.flatnonzero(img.reshape(-1) > 0)
    sub = colex_subsets(len(pixels), 4)[::97]
    masks = np.zeros((len(sub), digits.N_PIXELS), dtype=bool)
    for i, row in enumerate(sub):
        masks[i, pixels[row]] = True
    assert np.allclose(D.set_logits(judge, img, pixels, sub), D.judge_logits(judge, np.repeat(img[None], len(sub), 0),
                                                                               masks), atol=1e-4)


def test_search_matches_exact_minimax_in_both_orders(judge4):
    """A weak search can fake 'last mover wins'; the pooled search must pick exact minimax's winners, order by order."""
    split, judge = judge4
    agree, wins = [], {o: [0, 0] for o in ("honest-first", "liar-first")}
    for i in range(6):
        x, y = split.x_test[i], int(split.y_test[i])
        exact = D.debate_image(judge, x, y, 4, "exact", ground=40)
        search = D.debate_image(judge, x, y, 4, "search", ground=40)
        for o in wins:
            agree.extend(np.sign(exact[o]) == np.sign(search[o]))
            wins[o][0] += D.verdict(exact[o])[0]
            wins[o][1] += D.verdict(search[o])[0]
        assert (search["cooperative"] <= exact["cooperative"] + 1e-5).all()  # the pool only restricts the oracle
    assert np.mean(agree) >= 0.95
    assert all(abs(e - s) <= 1 for e, s in wins.values())


def test_debate_beats_the_judge_alone(judge4):
    split, judge = judge4
    x, y = split.x_test[:12], split.y_test[:12]
    alone = D.baseline(judge, x, y, 4, 10, rng(0, "t")).get("correct").mean()
    debate = np.mean([D.verdict(D.debate_image(judge, x[i], int(y[i]), 4, "exact")["honest-first"])[0]
                      for i in range(12)])
    assert debate > alone + 0.15


def test_bad_method_and_too_few_pixels(judge4):
    split, judge = judge4
    with pytest.raises(ValueError, match="valid methods"):
        D.debate_image(judge, split.x_test[0], 0, 4, "mcts")
    img = np.zeros((8, 8), np.float32)
    img[0, :3] = 1
    with pytest.raises(ValueError, match="fewer than k=4"):
        D.debate_image(judge, img, 0, 4, "exact")
