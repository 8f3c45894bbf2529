import math

import pytest

from hf_causal.metrics import ate_error, att_relative_error, interval_coverage, kl_divergence, pehe, tv_distance


def test_metrics():
    assert tv_distance({0: 0.2, 1: 0.8}, {0: 0.5, 1: 0.5}) == pytest.approx(0.3)
    assert tv_distance({"1": 1.0}, {1: 1.0}) == 0  # keys compared as strings (JSON round trips)
    assert kl_divergence({0: 0.5, 1: 0.5}, {0: 0.5, 1: 0.5}) == 0
    assert kl_divergence({0: 1.0}, {0: 0.5, 1: 0.5}) == pytest.approx(math.log(2))
    assert ate_error(0.3, 0.25) == pytest.approx(0.05)
    assert pehe([1, 2], [1, 4]) == pytest.approx(math.sqrt(2))
    assert att_relative_error(0.15, 0.1) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        att_relative_error(0.1, 0.0)
    assert interval_coverage([0, 1, 2], [1, 2, 3], 1.5) == pytest.approx(1 / 3)


def test_evaluate_metric_loads_offline_by_path():
    import evaluate

    from hf_causal.evaluate_metrics import CAUSAL_EFFECT_ERROR

    m = evaluate.load(CAUSAL_EFFECT_ERROR)
    out = m.compute(predictions=[0.3, 0.1], references=[0.25, 0.2])
    assert out["abs_error"] == pytest.approx(0.075)
    assert out["pehe"] == pytest.approx(pehe([0.3, 0.1], [0.25, 0.2]))
    assert out["relative_error"] == pytest.approx((0.2 + 0.5) / 2)
