"""An optimiser step cut into parts (nn.optimizers.Optimizer.step_parts): the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from digitlab.nn.build import build_network
from digitlab.nn.optimizers import make_optimizer, split_evenly
from digitlab.nn.parallel import SHARDS, available_threads
from digitlab.spec import make_spec
from digitlab.train import Trainer

LAYERS = ["conv:4:5", "pool:2", "dense:16", "dense:10"]


def network_with_gradients(seed: int):
    """A small network whose every gradient is filled with the same random numbers."""
    spec = make_spec({"layers": LAYERS, "batch_norm": True})
    network = build_network(spec, np.random.default_rng(0))
    rng = np.random.default_rng(seed)
    for param in network.params:
        param.grad[...] = rng.standard_normal(param.grad.shape)
    return network


@pytest.mark.parametrize(
    ("name", "momentum", "lmbda", "l1"),
    [("sgd", 0.0, 5.0, 0.0), ("momentum", 0.9, 0.0, 3.0), ("adam", 0.0, 5.0, 1.0)],
    ids=["sgd+l2", "momentum+l1", "adam+l2+l1"],
)
@pytest.mark.parametrize("parts", [2, 3])
def test_a_step_in_parts_moves_every_number_as_one_step(
    name: str, momentum: float, lmbda: float, l1: float, parts: int
) -> None:
    whole, cut = network_with_gradients(1), network_with_gradients(1)
    one = make_optimizer(name, whole.params, 0.01, momentum, lmbda, l1, 1000)
    several = make_optimizer(name, cut.params, 0.01, momentum, lmbda, l1, 1000)
    for step in range(3):
        if step:  # fresh gradients, the same for both
            rng = np.random.default_rng(step)
            for a, b in zip(whole.params, cut.params, strict=True):
                a.grad[...] = b.grad[...] = rng.standard_normal(a.grad.shape)
        one.step()
        for job in reversed(several.step_parts(parts)):  # any order: the parts are disjoint
            job()
        for a, b in zip(whole.arrays(), cut.arrays(), strict=True):
            assert np.array_equal(a, b)
        for key, array in one.state().items():
            assert np.array_equal(array, several.state()[key]), key


def test_parts_cover_every_element_once_in_even_runs() -> None:
    sizes = [5, 1, 12, 3]
    shares = split_evenly(sizes, 3)
    covered = [np.zeros(size, dtype=int) for size in sizes]
    for share in shares:
        for index, elements in share:
            covered[index][elements] += 1
    assert all((count == 1).all() for count in covered)
    lengths = [sum(e.stop - e.start for _, e in share) for share in shares]
    assert max(lengths) - min(lengths) <= 1
    assert split_evenly([2], 4)[0] == []  # more parts than elements: some stay empty


def test_a_step_in_parts_refuses_arrays_it_could_not_update_in_place() -> None:
    network = network_with_gradients(1)
    optimizer = make_optimizer("adam", network.params, 0.01, 0.0, 0.0, 0.0, 1000)
    weights = network.params[0]
    weights.value = np.asfortranarray(weights.value)  # a flat view of it would be a copy
    with pytest.raises(ValueError, match="contiguous"):
        optimizer.step_parts(2)


def test_the_run_does_not_depend_on_how_many_threads_step(mnist) -> None:
    spec = make_spec(
        {
            "layers": LAYERS,
            "batch_norm": True,
            "dropout": 0.3,
            "optimizer": "adam",
            "eta": 0.001,
            "lmbda": 1.0,
            "batch_size": 32,
            "epochs": 2,
            "train_size": 640,
            "seed": 3,
        }
    )
    with threadpool_limits(1, "blas"):  # one thread: the step in one piece
        alone = Trainer(spec, mnist, use_test=False)
        assert alone.step == alone.optimizer.step
        alone.run()
    shared = Trainer(spec, mnist, use_test=False)
    assert shared.step != shared.optimizer.step or available_threads() < SHARDS
    shared.run()
    for a, b in zip(alone.network.arrays(), shared.network.arrays(), strict=True):
        assert np.array_equal(a, b)
