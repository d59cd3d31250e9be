"""kmlp: a k-layer MLP with batch normalisation in NumPy, reproducing a KTH DD2424 report."""

from importlib.metadata import PackageNotFoundError, version

from .model import MLP

try:
    __version__ = version("kmlp")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["MLP", "__version__"]
