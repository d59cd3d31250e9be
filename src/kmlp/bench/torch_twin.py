"""The same training in PyTorch on the CPU, for `kmlp bench` to compare kmlp with.

Used only by the bench and only when PyTorch is installed (the optional extra
``kmlp[bench]``); kmlp itself never needs it.

:class:`TorchNet` is the net the epoch loop (:func:`kmlp.nn.training.run`) trains, so
the batches, their order, the cyclical learning rate and the evaluations are kmlp's by
construction. The same net (affine; batch norm with the batch mean and biased variance
in training, moving averages with momentum 1 - alpha in evaluation, seeded from the
first batch; ReLU; softmax cross-entropy), the same initial weights (copied from kmlp's
model of the seed), L2 as 2 lam W added to the weights' gradients (``SGD`` with
``weight_decay`` on the weight matrices only), float32, evaluation in chunks of 10,000.
One difference leaves the updates and their cost alone but not the evaluation-mode
numbers: PyTorch's moving variance is the unbiased one.
"""

from __future__ import annotations

import numpy as np

from ..nn.fast import EVAL_CHUNK
from ..nn.metrics import Evaluation
from ..nn.settings import TrainSettings
from .timing import timed_run


def info() -> dict:
    """Whether PyTorch can be imported, its version and how long the import took."""
    import time

    t = time.perf_counter()
    try:
        import torch
    except ImportError:
        return {"available": False}
    return {
        "available": True,
        "version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "import_s": time.perf_counter() - t,
    }


def _net(model):
    """A torch.nn.Sequential equal to ``model`` (float32), parameters copied."""
    import torch
    from torch import nn

    p = model.parameters()
    layers = []
    with torch.no_grad():
        for i in range(1, model.k + 1):
            lin = nn.Linear(model.sizes[i - 1], model.sizes[i])
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(p[f"W{i}"], np.float32)))
            lin.bias.copy_(torch.from_numpy(np.asarray(p[f"b{i}"], np.float32)))
            layers.append(lin)
            if i < model.k:
                if model.batch_norm:
                    bn = nn.BatchNorm1d(model.sizes[i], eps=model.eps, momentum=1 - model.alpha)
                    bn.weight.copy_(torch.from_numpy(np.asarray(p[f"gamma{i}"], np.float32)))
                    bn.bias.copy_(torch.from_numpy(np.asarray(p[f"beta{i}"], np.float32)))
                    layers.append(bn)
                layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class TorchNet:
    """kmlp's model as a PyTorch net, with what the epoch loop asks of a net."""

    def __init__(self, model, lam: float):
        import torch

        self.torch = torch
        self.net = _net(model).train()
        self.batch_norm = model.batch_norm
        self.weights = [m.weight for m in self.net if isinstance(m, torch.nn.Linear)]
        others = [q for q in self.net.parameters() if all(q is not w for w in self.weights)]
        self.opt = torch.optim.SGD(
            [{"params": self.weights, "weight_decay": 2 * lam}, {"params": others, "weight_decay": 0.0}], lr=0.0
        )

    def seed_statistics(self, X) -> None:
        """The moving averages set to the statistics of batch ``X``, as kmlp seeds them."""
        norms = [m for m in self.net if isinstance(m, self.torch.nn.BatchNorm1d)]
        momenta = [m.momentum for m in norms]
        with self.torch.no_grad():
            for m in norms:
                m.momentum = 1.0
            self.net(self.torch.from_numpy(X))
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum

    def train_step(self, X, y, lam: float, eta: float) -> float:
        from torch.nn import functional as F

        for group in self.opt.param_groups:
            group["lr"] = eta
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(self.torch.from_numpy(X)), self.torch.from_numpy(np.asarray(y, np.int64)))
        loss.backward()
        self.opt.step()
        return loss.item()

    def evaluate(self, X, y, lam: float) -> Evaluation:
        from torch.nn import functional as F

        X, y = self.torch.from_numpy(X), self.torch.from_numpy(np.asarray(y, np.int64))
        loss, correct = 0.0, 0
        self.net.eval()
        with self.torch.no_grad():
            for s in range(0, X.shape[0], EVAL_CHUNK):
                z = self.net(X[s : s + EVAL_CHUNK])
                loss += float(F.cross_entropy(z, y[s : s + EVAL_CHUNK], reduction="sum"))
                correct += int((z.argmax(1) == y[s : s + EVAL_CHUNK]).sum())
            cost = loss / X.shape[0] + lam * sum(float((w * w).sum()) for w in self.weights)
        self.net.train()
        return Evaluation(loss / X.shape[0], cost, correct / X.shape[0])


def torch_run(load, settings: TrainSettings, seed: int = 1, threads: int = 1) -> dict:
    """:func:`kmlp.bench.runs.kmlp_run`'s run with the PyTorch twin: the same phases,
    counts and results."""
    import torch

    torch.set_num_threads(threads)
    return timed_run(load, settings, seed, wrap=lambda model: TorchNet(model, settings.lam))
