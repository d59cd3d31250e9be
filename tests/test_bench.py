"""kmlp.bench and its PyTorch twin on tiny sizes: the fields are sane and the twin
trains the same net the same way. No timing is asserted."""

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from kmlp import MLP
from kmlp.bench import floors, runs, timing
from kmlp.nn.settings import TrainSettings
from kmlp.nn.training import run as train_run

TINY = TrainSettings(hidden=(20, 10), batch_norm=True, n_batch=30, n_s=4, cycles=1, eval_every=3, eval_train_subset=50)


def tiny_data():
    return runs.synthetic_data(n_train=120, n_val=20, n_test=40, d=64, n_classes=5, seed=1)


def multiply_add_clock(monkeypatch):
    """Make bench's clock count the multiply-adds of the matrix products done so far: a
    floor's unit. Returns the list of (a.shape, b.shape) of every product."""
    products, done = [], [0]
    matmul = np.matmul

    def counted(a, b, out=None):
        products.append((a.shape, b.shape))
        done[0] += a.shape[0] * a.shape[1] * b.shape[1]
        return matmul(a, b, out=out)

    monkeypatch.setattr(np, "matmul", counted)
    monkeypatch.setattr(timing, "time", SimpleNamespace(process_time=lambda: done[0], perf_counter=lambda: done[0]))
    return products


def test_a_whole_run_does_exactly_its_floors_products_and_trains_as_kmlp_train(monkeypatch):
    """On a clock that counts multiply-adds, a whole run costs exactly its floor (ratio 1:
    no product it could avoid), split into its phases: loading does none, the 8 updates
    99,300 each, the 440 images evaluated 1,530 each (sizes [64, 20, 10, 5], batch 30)."""
    data = tiny_data()
    multiply_add_clock(monkeypatch)
    res = runs.measure_run(lambda: data, TINY, rounds=2, torch=False)
    run = res["runs"]["kmlp"]
    assert list(res["runs"]) == ["kmlp"] and res["sizes"] == [64, 20, 10, 5]
    assert run["updates"] == 8 and run["status"] == "completed"
    # step 0, 3, 6 and 8 on 50 training + 20 validation images, then all 120 + 40 test
    assert run["evaluated_images"] == 4 * (50 + 20) + 120 + 40 == 440
    # per update: x W^T through 64-20-10-5 (45,900), dW of each layer (45,900), the
    # gradient back through W3 and W2 (7,500); per image: x W^T (1,530)
    per_update = 30 * (64 * 20 + 20 * 10 + 10 * 5) * 2 + 30 * (5 * 10 + 10 * 20)
    assert (per_update, 64 * 20 + 20 * 10 + 10 * 5) == (99300, 1530)
    assert res["floor_per_update_s"] == {"cpu": 99300, "wall": 99300}
    assert res["floor_per_image_s"] == {"cpu": 1530, "wall": 1530}
    for clock in ("cpu", "wall"):
        assert run["load_s"][clock] == 0
        assert run["updates_s"][clock] == 8 * 99300 and run["evaluation_s"][clock] == 440 * 1530
        assert run["total_s"][clock] == run["floor_s"][clock] == 8 * 99300 + 440 * 1530
        assert run["ratio"][clock] == 1.0
    # the accuracies are those of the same training done as `kmlp train` does it
    _, trained = train_run(TINY, data, 1)
    assert (run["val_acc"], run["test_acc"]) == (trained.final["val_acc"], trained.final["test_acc"])


def test_updates_against_their_floors():
    res = runs.measure_updates({"tiny": (8, 6)}, d_in=32, n_classes=4, n_batch=10, calls=2, rounds=2)
    e = res["nets"]["tiny"]
    assert e["sizes"] == [32, 8, 6, 4]
    assert e["floor_s"]["cpu"] == min(e["floor_dout_din_s"]["cpu"], e["floor_din_dout_s"]["cpu"])
    assert e["ratio_bn"]["cpu"] == pytest.approx(e["update_bn_s"]["cpu"] / e["floor_s"]["cpu"])


def test_the_run_floor_counts_every_product_once(monkeypatch):
    """Every product of the floor, and its time, counted by hand for sizes [32, 8, 4]. The
    clock here is the multiply-adds done so far, so the floor per update and per image is
    the multiply-adds of the products it must do, and a product dropped or done twice
    shows."""
    products = multiply_add_clock(monkeypatch)
    floor = floors.run_floor([32, 8, 4], n_batch=10, rows=25, calls=3, chunks=2)()
    # An update on 10 rows: s = h W^T for both layers, dW for both, and the gradient back
    # through W2 (none through W1: nothing needs the input's gradient). dW1 is g^T x with
    # W1 stored d_out x d_in, x^T g (its transpose) stored d_in x d_out.
    update = [((10, 32), (32, 8)), ((10, 8), (8, 4)), ((4, 10), (10, 8)), ((10, 4), (4, 8))]
    dW1 = {False: ((8, 10), (10, 32)), True: ((32, 10), (10, 8))}
    image = [((25, 32), (32, 8)), ((25, 8), (8, 4))]  # a chunk of 25 images: s = h W^T per layer
    expected = Counter()
    for layout in (False, True):  # both layouts, each call once untimed first
        expected.update({p: 1 + 3 for p in [*update, dW1[layout]]})
        for p in image:
            expected[p] += 1 + 2
    assert Counter(products) == expected
    per_update = 10 * 32 * 8 + 10 * 8 * 4 + 4 * 10 * 8 + 10 * 4 * 8 + 8 * 10 * 32  # 6080, alike in both layouts
    per_image = 32 * 8 + 8 * 4
    assert floor == {"update": {"cpu": per_update, "wall": per_update}, "image": {"cpu": per_image, "wall": per_image}}


def test_without_torch_the_bench_says_so(monkeypatch):
    import builtins

    from kmlp.bench import torch_twin

    real_import = builtins.__import__

    def no_torch(name, *args, **kw):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert torch_twin.info() == {"available": False}
    data = tiny_data()
    assert list(runs.measure_run(lambda: data, TINY, rounds=1)["runs"]) == ["kmlp"]


# -- the PyTorch twin (skipped unless PyTorch is installed; CI installs it) ------------
NO_TORCH = (
    "PyTorch is not installed (pip install -e '.[bench]'): kmlp bench's PyTorch twin, and so its "
    "'faster than PyTorch' comparison, is not checked against kmlp's net and schedule here"
)


@pytest.mark.needs("torch")
def test_the_torch_net_is_the_same_net():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    from kmlp.bench.torch_twin import _net

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 64)).astype(np.float32)
    y = rng.integers(0, 5, 30)
    model = MLP([64, 20, 10, 5], batch_norm=True, seed=3, dtype=np.float32)
    net = _net(model).train()
    np.testing.assert_allclose(
        net(torch.from_numpy(X)).detach().numpy(), model.forward(X, "train"), rtol=1e-4, atol=1e-5
    )
    # One step of SGD with weight decay 2 lam on the weights is kmlp's update.
    weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
    others = [q for q in net.parameters() if all(q is not w for w in weights)]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 0.02}, {"params": others, "weight_decay": 0.0}], lr=0.1)
    torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    opt.step()
    model.train_step(X, y, 0.01, 0.1)
    np.testing.assert_allclose(weights[0].detach().numpy(), model.parameters()["W1"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weights[-1].detach().numpy(), model.parameters()["W3"], rtol=1e-4, atol=1e-6)


@pytest.mark.needs("torch")
def test_torch_runs_the_same_schedule():
    pytest.importorskip("torch", reason=NO_TORCH)
    data = tiny_data()
    res = runs.measure_run(lambda: data, TINY, rounds=2)
    kmlp, torch_run = res["runs"]["kmlp"], res["runs"]["torch"]
    assert res["torch"]["available"]
    assert (torch_run["updates"], torch_run["evaluated_images"]) == (kmlp["updates"], kmlp["evaluated_images"])
    assert torch_run["status"] == "completed"
    # the speedup is the median over rounds of PyTorch's time over kmlp's, round by round
    for clock in ("cpu", "wall"):
        rounds = zip(torch_run["per_round"][clock], kmlp["per_round"][clock], strict=True)
        assert res["speedup_over_torch"][clock] == timing.median([t / k for t, k in rounds])
    # accuracies measured on the 20 validation and 40 test images
    for acc, images in ((torch_run["val_acc"], 20), (torch_run["test_acc"], 40)):
        assert acc * images == pytest.approx(round(acc * images), abs=1e-9), acc
