"""An `evaluate` metric for causal effect estimates, loadable offline by path:

    import evaluate
    from hf_causal.evaluate_metrics import CAUSAL_EFFECT_ERROR
    metric = evaluate.load(CAUSAL_EFFECT_ERROR)
    metric.compute(predictions=[0.31, 0.12], references=[0.30, 0.10])

It wraps the plain functions of ``hf_causal.metrics``: mean absolute error (ATE/ATT error),
sqrt(PEHE) for per-unit effects, and the mean relative error (the PeerRead ATT metric).
"""

import datasets
import evaluate
import numpy as np

from hf_causal.metrics import att_relative_error, pehe

_DESCRIPTION = "Errors of causal effect estimates against true effects: abs error, sqrt(PEHE), relative error."
_KWARGS = """
Args:
    predictions: estimated effects (ATE/ATT per run, or per-unit CATEs).
    references: true effects, aligned with predictions.
Returns:
    abs_error: mean |prediction - reference|.
    pehe: sqrt(mean (prediction - reference)^2).
    relative_error: mean |prediction - reference| / |reference| (references must be non-zero).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class CausalEffectError(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Im, Zhang, Verma, Cho. Deep Autoregressive Models as Causal Inference Engines. arXiv 2409.18581",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        p = np.asarray(predictions, dtype=float)
        r = np.asarray(references, dtype=float)
        out = {"abs_error": float(np.mean(np.abs(p - r))), "pehe": pehe(p, r)}
        if np.all(r != 0):
            out["relative_error"] = float(np.mean([att_relative_error(a, b) for a, b in zip(p, r)]))
        return out
