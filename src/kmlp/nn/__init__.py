"""The math: layers, the MLP, initialisers, schedules, training, gradient checks.

Pure NumPy on arrays: nothing here reads or writes a file or knows the command line.
"""

from .model import MLP
from .settings import GradcheckSettings, NetSettings, TrainSettings
from .training import TrainResult, build_model, train

__all__ = ["MLP", "GradcheckSettings", "NetSettings", "TrainResult", "TrainSettings", "build_model", "train"]
