"""Learning-rate schedules."""

from __future__ import annotations

import numpy as np


def cyclic_eta(t, eta_min: float, eta_max: float, n_s: int):
    """Triangular cyclical learning rate (Smith 2015) at update step ``t``.

    Rises linearly from ``eta_min`` at ``t = 2 l n_s`` to ``eta_max`` at
    ``(2 l + 1) n_s`` and falls back by ``2 (l + 1) n_s``. ``t`` may be an array.
    """
    if n_s <= 0:
        raise ValueError(f"n_s must be positive, got {n_s}")
    p = np.mod(t, 2 * n_s)
    frac = np.where(p <= n_s, p / n_s, (2 * n_s - p) / n_s)
    eta = eta_min + frac * (eta_max - eta_min)
    return float(eta) if np.ndim(eta) == 0 else eta
