"""Sharded mini-batches (nn.parallel): the same gradients, whatever the thread count."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from digitlab.data.mnist import one_hot
from digitlab.nn.build import build_network
from digitlab.nn.parallel import MIN_SHARDED_BATCH, ShardedGradients, Workers, replica, shardable
from digitlab.spec import make_spec
from digitlab.train import Trainer

from .interrupt import StopAfter

CONV = ["conv:4:5", "pool:2", "dense:16", "dense:10"]


def network(dropout: float = 0.0, seed: int = 0, dtype=np.float32, **extra):
    spec = make_spec(
        {"layers": CONV, "cost": "log-likelihood", "dropout": dropout, "seed": seed, **extra}
    )
    return build_network(spec, np.random.default_rng(seed), dtype)


def batch(mnist, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    return mnist.train.images[:n], one_hot(mnist.train.labels[:n])


def grads(net) -> list[np.ndarray]:
    return [p.grad.copy() for p in net.params]


def test_shards_add_up_to_the_whole_batch_gradient(mnist) -> None:
    x, y = batch(mnist)
    whole, sharded = network(), network()
    whole.gradients(x, y, 0.5)
    ShardedGradients(sharded, threads=2)(x, y, 0.5)
    for a, b in zip(grads(whole), grads(sharded), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_norm_shards_keep_the_whole_batch_statistics(mnist, threads: int) -> None:
    x, y = (array.astype(np.float64) for array in batch(mnist))  # exact maths: no rounding
    whole, sharded = (
        network(batch_norm=True, dtype=np.float64),
        network(batch_norm=True, dtype=np.float64),
    )
    whole.gradients(x, y)
    gradients = ShardedGradients(sharded, threads)
    gradients(x, y)
    for a, b in zip(grads(whole), grads(sharded), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for a, b in zip(whole.buffers, sharded.buffers, strict=True):  # running averages
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert all(layer.gather is None for layer in sharded.layers if hasattr(layer, "gather"))
    # and the network alone is itself again: a one-row batch, no exchange to wait at
    gradients(x[:1], y[:1])


def test_an_error_in_one_shard_is_raised_not_waited_for(mnist) -> None:
    x, y = batch(mnist)
    gradients = ShardedGradients(network(batch_norm=True), threads=2)
    gradients.replicas[0].layers[1].forward = lambda *args: 1 / 0  # the replica's conv

    with pytest.raises(ZeroDivisionError):
        gradients(x, y)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["dropout", "dropout+batch-norm"])
def test_thread_count_does_not_change_a_single_number(mnist, batch_norm: bool) -> None:
    x, y = batch(mnist)
    one, two = (network(dropout=0.5, batch_norm=batch_norm) for _ in range(2))
    sequential, threaded = ShardedGradients(one, threads=1), ShardedGradients(two, threads=2)
    for _ in range(3):  # dropout masks change every step, identically in both
        sequential(x, y)
        threaded(x, y)
        for a, b in zip(grads(one), grads(two), strict=True):
            assert np.array_equal(a, b)


def test_shards_draw_their_own_dropout_masks(mnist) -> None:
    x, y = batch(mnist, 1)
    twice_x, twice_y = np.repeat(x, 2, axis=0), np.repeat(y, 2, axis=0)
    net = network(dropout=0.5)
    sharded = ShardedGradients(net, threads=1)
    sharded(twice_x, twice_y)
    second = grads(sharded.replicas[0])
    first = [total - part for total, part in zip(grads(net), second, strict=True)]
    assert not all(np.allclose(a, b) for a, b in zip(first, second, strict=True))


def test_an_error_in_the_calling_threads_shard_is_raised_too(mnist) -> None:
    x, y = batch(mnist)
    gradients = ShardedGradients(network(batch_norm=True), threads=2)
    gradients.network.layers[1].forward = lambda *args: 1 / 0  # the calling thread's conv

    with pytest.raises(ZeroDivisionError):
        gradients(x, y)


def test_workers_wait_for_every_job_even_when_one_fails() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    def failing() -> None:
        raise KeyError("first job")

    with pytest.raises(KeyError):
        Workers(2).run([failing, slow])
    assert finished.is_set()  # no thread still at work when the error arrives


def test_workers_refuse_more_jobs_than_threads() -> None:
    with pytest.raises(ValueError, match="3 jobs for 2 threads"):
        Workers(2).run([lambda: None] * 3)


def test_replica_shares_weights_not_gradients() -> None:
    net = network()
    copy = replica(net)
    for original, twin in zip(net.params, copy.params, strict=True):
        assert twin.value is original.value
        assert twin.grad is not original.grad


@pytest.mark.parametrize(
    ("layers", "batch_norm", "expected"),
    [(CONV, False, True), (CONV, True, True), ([784, 30, 10], False, False)],
    ids=["conv", "batch-norm", "dense"],
)
def test_only_convolutional_networks_are_sharded(
    mnist, layers, batch_norm: bool, expected: bool
) -> None:
    spec = make_spec({"layers": layers, "batch_norm": batch_norm, "batch_size": MIN_SHARDED_BATCH})
    trainer = Trainer(spec, mnist)
    assert shardable(trainer.network) is expected
    assert trainer.sharded is expected
    small = Trainer(spec.with_overrides(batch_size=MIN_SHARDED_BATCH - 1), mnist)
    assert not small.sharded


def test_sharded_training_learns(mnist) -> None:
    spec = make_spec(
        {
            "layers": CONV,
            "activation": "relu",
            "init": "he",
            "cost": "log-likelihood",
            "dropout": 0.2,
            "batch_size": MIN_SHARDED_BATCH,
            "eta": 0.3,
            "epochs": 1,
            "train_size": 10_000,
            "seed": 1,
        }
    )
    trainer = Trainer(spec, mnist, use_test=False)
    assert trainer.sharded
    assert trainer.run().history.best.validation_accuracy > 0.88  # measured 0.91 (seeds 1, 2)


def test_sharded_run_resumes_exactly(mnist, tmp_path) -> None:
    spec = make_spec(
        {
            "layers": CONV,
            "cost": "log-likelihood",
            "dropout": 0.3,
            "batch_size": MIN_SHARDED_BATCH,
            "epochs": 3,
            "train_size": 1000,
            "seed": 4,
        }
    )
    straight = Trainer(spec, mnist, use_test=False).run()
    checkpoint = tmp_path / "run.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, mnist, [StopAfter(2)], checkpoint, use_test=False).run()
    resumed = Trainer.resume(checkpoint, mnist, use_test=False).run()
    for a, b in zip(resumed.model.network.arrays(), straight.model.network.arrays(), strict=True):
        assert np.array_equal(a, b)
