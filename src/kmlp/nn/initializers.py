"""Weight initialisers: each returns a ``d_out x d_in`` array from a generator."""

from __future__ import annotations

import numpy as np


def he_normal(rng: np.random.Generator, d_out: int, d_in: int) -> np.ndarray:
    """He et al.: normal with std sqrt(2 / fan_in), the report's default."""
    return rng.standard_normal((d_out, d_in)) * np.sqrt(2.0 / d_in)


def fixed_normal(sigma: float):
    """Normal with the same std ``sigma`` at every layer (the sensitivity study)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")

    def init(rng: np.random.Generator, d_out: int, d_in: int) -> np.ndarray:
        return rng.standard_normal((d_out, d_in)) * sigma

    return init


def get(init: str, sigma: float | None = None):
    """Initialiser by name: ``"he"`` or ``"normal"`` (which needs ``sigma``)."""
    if init == "he":
        return he_normal
    if init == "normal":
        if sigma is None:
            raise ValueError("init 'normal' needs a sigma")
        return fixed_normal(sigma)
    raise ValueError(f"unknown init {init!r}: expected 'he' or 'normal'")
