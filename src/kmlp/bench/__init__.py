"""Timing: how close a training update and a whole run come to the machine's limit.

Beside the math, which knows nothing of it: ``timing`` (clocks, interleaved rounds, a
run's phases), ``floors`` (the matrix products a computation cannot avoid), ``runs``
(updates and whole runs against their floors) and ``torch_twin`` (the same training in
PyTorch, when it is installed). Nothing here reads files: a whole run gets its data from
a ``load`` callable.
"""
