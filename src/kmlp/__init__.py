"""kmlp: a k-layer MLP with batch normalisation in NumPy, reproducing a KTH DD2424 report.

``kmlp.nn`` is the math, ``kmlp.data`` brings CIFAR-10 in, ``kmlp.runs`` holds what a
training run made, ``kmlp.aggregate`` turns run files into tables, figures and the record,
and ``kmlp.cli`` is the command line over all of them.

Importing ``kmlp`` (and ``kmlp.cli``) loads neither NumPy nor h5py: every ``kmlp`` job
of the workflow starts a process, and a verb loads what it uses.
"""

#: The package version (pyproject.toml reads it from here).
__version__ = "0.1.0"

__all__ = ["MLP", "__version__"]


def __getattr__(name):
    if name == "MLP":
        from .nn.model import MLP

        return MLP
    raise AttributeError(f"module 'kmlp' has no attribute {name!r}")
