"""The math: layers, the MLP, initialisers, schedules, training, gradient checks.

Pure NumPy on arrays: nothing here reads or writes a file or knows the command line.
Beside the math, and used by nothing in it: ``bench`` times it, and ``torch_baseline``
runs the same training in PyTorch for the bench (only when PyTorch is installed).
The settings import without NumPy (the command line builds its flags from them); the
rest loads on first use.
"""

from .settings import GradcheckSettings, NetSettings, TrainSettings

__all__ = ["MLP", "GradcheckSettings", "NetSettings", "TrainResult", "TrainSettings", "build_model", "train"]


def __getattr__(name):
    if name == "MLP":
        from .model import MLP

        return MLP
    if name in ("TrainResult", "build_model", "train"):
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'kmlp.nn' has no attribute {name!r}")
