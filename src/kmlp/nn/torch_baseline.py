"""The same training in PyTorch on the CPU, for `kmlp bench` to compare kmlp with.

Used only by the bench and only when PyTorch is installed (the optional extra
``kmlp[bench]``); kmlp itself never needs it.

The same net (affine; batch norm with the batch mean and biased variance in training,
moving averages with momentum 1 - alpha in evaluation; ReLU; softmax cross-entropy),
the same initial weights (copied from kmlp's model of the seed), the same batches in
the same order, the same cyclical learning rate, L2 as 2 lam W added to the weights'
gradients (``SGD`` with ``weight_decay`` on the weight matrices only), float32, and
the same evaluations of the same images (chunks of 10,000). A difference that leaves
the training updates and their cost alone but not the evaluation-mode numbers:
PyTorch's moving variance is the unbiased one and starts at 1, where kmlp seeds both
averages with the first batch's statistics.
"""

from __future__ import annotations

import math

import numpy as np

from .schedules import cyclic_eta
from .settings import TrainSettings
from .training import build_model, evaluation_subset, seed_streams


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


def torch_run(load, settings: TrainSettings, seed: int = 1, threads: int = 1) -> dict:
    """kmlp.nn.bench.kmlp_run's run in PyTorch: the same phases, counts and results."""
    import torch
    from torch.nn import functional as F

    from .bench import Clock, Phases
    from .fast import EVAL_CHUNK

    torch.set_num_threads(threads)
    phases = Phases()
    ds = load()
    phases.loaded()
    model = build_model(settings, ds.X_train.shape[1], len(ds.class_names), seed)
    net = _net(model)
    weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
    others = [q for q in net.parameters() if all(q is not w for w in weights)]
    opt = torch.optim.SGD(
        [{"params": weights, "weight_decay": 2 * settings.lam}, {"params": others, "weight_decay": 0.0}], lr=0.0
    )
    X_train, y_train = torch.from_numpy(ds.X_train), torch.from_numpy(np.asarray(ds.y_train, np.int64))
    X_val, y_val = torch.from_numpy(ds.X_val), torch.from_numpy(np.asarray(ds.y_val, np.int64))
    n = X_train.shape[0]
    rng = np.random.default_rng(seed_streams(seed)[1])
    pick = evaluation_subset(n, settings, seed)
    if pick is not None:
        X_eval, y_eval = X_train[torch.from_numpy(pick)], y_train[torch.from_numpy(pick)]
    else:
        X_eval, y_eval = X_train, y_train

    @torch.no_grad()
    def evaluate(X, y):
        c = Clock()
        net.eval()
        loss, correct = 0.0, 0
        for s in range(0, X.shape[0], EVAL_CHUNK):
            z = net(X[s : s + EVAL_CHUNK])
            loss += float(F.cross_entropy(z, y[s : s + EVAL_CHUNK], reduction="sum"))
            correct += int((z.argmax(1) == y[s : s + EVAL_CHUNK]).sum())
        net.train()
        loss /= X.shape[0]
        cost = loss + settings.lam * sum(float((w * w).sum()) for w in weights)
        phases.evaluated(c, X.shape[0])
        return loss, cost, correct / X.shape[0]

    batches_per_epoch = n // settings.n_batch
    eval_every = settings.eval_every or batches_per_epoch
    total = settings.total_updates
    etas = cyclic_eta(np.arange(total), settings.eta_min, settings.eta_max, settings.n_s).tolist()
    Xb = torch.empty((settings.n_batch, X_train.shape[1]))
    yb = torch.empty(settings.n_batch, dtype=torch.int64)
    net.train()
    evaluate(X_eval, y_eval), evaluate(X_val, y_val)
    status, step, order, val = "completed", 0, None, None
    while step < total:
        j = step % batches_per_epoch
        if j == 0:
            order = torch.from_numpy(rng.permutation(n))
        idx = order[j * settings.n_batch : (j + 1) * settings.n_batch]
        torch.index_select(X_train, 0, idx, out=Xb)
        torch.index_select(y_train, 0, idx, out=yb)
        for group in opt.param_groups:
            group["lr"] = etas[step]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(Xb), yb)
        loss.backward()
        opt.step()
        step += 1
        if not math.isfinite(loss.item()):
            status = "diverged"
            break
        if step % eval_every == 0 or step == total:
            evaluate(X_eval, y_eval)
            val = evaluate(X_val, y_val)
    if X_eval is not X_train:
        evaluate(X_train, y_train)
    test = evaluate(torch.from_numpy(ds.X_test), torch.from_numpy(np.asarray(ds.y_test, np.int64)))
    return phases.record(step, status, val[2] if val else math.nan, test[2])
