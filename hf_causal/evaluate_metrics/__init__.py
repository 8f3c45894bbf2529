"""Local `evaluate` metric modules (load them by path; no Hub access needed)."""

from pathlib import Path

CAUSAL_EFFECT_ERROR = str(Path(__file__).parent / "causal_effect_error" / "causal_effect_error.py")

__all__ = ["CAUSAL_EFFECT_ERROR"]
