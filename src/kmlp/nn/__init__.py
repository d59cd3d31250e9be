"""The math: layers, the MLP, initialisers, schedules, training, gradient checks.

Pure NumPy on arrays: nothing here reads or writes a file, knows the command line, the
study or the bench (``kmlp.bench`` times it from outside). The settings and the metrics'
names import without NumPy (the command line builds its flags from them, the study checks
a config with them); the rest loads on first use.
"""

from .settings import GradcheckSettings, NetSettings, TrainSettings

__all__ = ["MLP", "GradcheckSettings", "NetSettings", "TrainResult", "TrainSettings", "build_model", "fit", "run"]


def __getattr__(name):
    if name == "MLP":
        from .model import MLP

        return MLP
    if name in ("TrainResult", "build_model", "fit", "run"):
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'kmlp.nn' has no attribute {name!r}")
