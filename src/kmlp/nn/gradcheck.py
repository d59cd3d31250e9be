"""Numerical gradient checks: centred differences against the analytic gradients."""

from __future__ import annotations

import numpy as np

from .layers import softmax_cross_entropy
from .model import MLP
from .settings import GradcheckSettings


def _cost_and_pattern(model: MLP, X, y, lam: float):
    """Training-mode cost and which ReLUs are on: a kink crossed shows as a change."""
    logits, tape = model.forward(X, "train", keep=True)
    loss = softmax_cross_entropy(logits, y, grad=False)
    return loss + model.penalty(lam), tape.relu_pattern()


def numerical_gradients(model: MLP, X, y, lam: float, h: float = 1e-5):
    """Centred differences (J(p + h) - J(p - h)) / 2h for every parameter entry.

    Returns ``(grads, kinks)``: ``kinks[name]`` marks entries whose +h or -h step
    switched a ReLU on or off, where J is not differentiable on the step and the
    difference quotient says nothing about the gradient.
    """
    X = np.asarray(X, model.dtype)
    y = np.asarray(y, np.intp)
    _, base = _cost_and_pattern(model, X, y, lam)
    grads, kinks = {}, {}
    for name, p in model.parameters().items():
        g = np.empty(p.shape, p.dtype)
        kink = np.zeros(p.shape, bool)
        for i in np.ndindex(p.shape):  # p itself, whatever its memory order (W1 is a view)
            old = p[i]
            p[i] = old + h
            c_plus, pat_plus = _cost_and_pattern(model, X, y, lam)
            p[i] = old - h
            c_minus, pat_minus = _cost_and_pattern(model, X, y, lam)
            p[i] = old
            g[i] = (c_plus - c_minus) / (2 * h)
            kink[i] = not (np.array_equal(pat_plus, base) and np.array_equal(pat_minus, base))
        grads[name], kinks[name] = g, kink
    return grads, kinks


def relative_error(ga, gn, eps: float = 1e-12):
    """|ga - gn| / max(eps, |ga| + |gn|), elementwise."""
    return np.abs(ga - gn) / np.maximum(eps, np.abs(ga) + np.abs(gn))


def compare(analytic: dict, numerical: dict, kinks: dict | None = None, abs_floor: float = 1e-8) -> dict:
    """The report's statistics per parameter, and relative errors two ways.

    ``rel_error`` (what a check passes or fails on) is the array-level
    ||ga - gn|| / max(eps, ||ga|| + ||gn||). The entrywise maximum
    ``max_elem_rel_error`` is shown too, but is dominated by entries whose gradient is
    near zero, where the difference quotient's round-off (~1e-10 here) is all there is.
    A parameter whose gradients are all below ``abs_floor`` (a bias before batch norm
    has a true gradient of exactly zero) is compared absolutely: its ``rel_error`` is 0
    when max |ga - gn| < ``abs_floor`` and 1 otherwise. Entries marked in ``kinks``
    (a ReLU switched within the step) are left out and counted.
    """
    stats = {}
    for name, ga_all in analytic.items():
        keep = ~kinks[name] if kinks else np.ones(ga_all.shape, bool)
        ga, gn = ga_all[keep], numerical[name][keep]
        diff = ga - gn
        if ga.size == 0:
            rel = 0.0
        elif np.abs(ga).max() < abs_floor and np.abs(gn).max() < abs_floor:
            rel = 0.0 if np.abs(diff).max() < abs_floor else 1.0
        else:
            rel = float(np.linalg.norm(diff) / max(1e-12, np.linalg.norm(ga) + np.linalg.norm(gn)))
        nan = float("nan")
        stats[name] = {
            "shape": list(ga_all.shape),
            "grad_mean": float(ga.mean()) if ga.size else nan,
            "grad_std": float(ga.std()) if ga.size else nan,
            "diff_mean": float(diff.mean()) if ga.size else nan,
            "diff_std": float(diff.std()) if ga.size else nan,
            "diff_max": float(np.abs(diff).max()) if ga.size else nan,
            "rel_error": rel,
            "max_elem_rel_error": float(relative_error(ga, gn).max()) if ga.size else nan,
            "kinks": int((~keep).sum()),
        }
    return stats


def check_model(model: MLP, X, y, lam: float = 0.0, h: float = 1e-5) -> dict:
    _, analytic = model.cost_and_gradients(X, y, lam)
    numerical, kinks = numerical_gradients(model, X, y, lam, h)
    return compare(analytic, numerical, kinks)


def random_batch(settings: GradcheckSettings):
    """Gaussian inputs and labels for a check that is given no data."""
    rng = np.random.default_rng(settings.seed)
    X = rng.standard_normal((settings.n_samples, settings.input_dim))
    return X, rng.integers(0, 10, settings.n_samples)


def run_check(settings: GradcheckSettings, X, y, n_classes: int = 10) -> dict:
    """The settings' float64 net on ``(X, y)``, checked: per-parameter statistics, the
    largest relative error and whether it is within ``max_rel_error``."""
    model = MLP(
        [X.shape[1], *settings.hidden, n_classes],
        batch_norm=settings.batch_norm,
        init=settings.init,
        sigma=settings.sigma,
        seed=settings.seed,
        dtype=np.float64,
        bn_order=settings.bn_order,
    )
    params = check_model(model, X, y, settings.lam, settings.h)
    worst = max(p["rel_error"] for p in params.values())
    return {"parameters": params, "max_rel_error": worst, "passed": bool(worst <= settings.max_rel_error)}
