"""kmlp: a k-layer MLP with batch normalisation in NumPy, reproducing a KTH DD2424 report.

``kmlp.nn`` is the math, ``kmlp.data`` brings CIFAR-10 in, ``kmlp.runs`` holds what a
training run made, ``kmlp.report`` turns run files into tables, figures and the record,
and ``kmlp.cli`` is the command line over all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kmlp")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

from .nn.model import MLP  # noqa: E402  (after __version__, which submodules import)

__all__ = ["MLP", "__version__"]
