"""Data parallelism on a multi-core CPU: one mini-batch, two halves, two threads.

Only NumPy's matrix products (BLAS) use several cores; every other NumPy call runs on
one.  In a convolutional network the work between the products -- the im2col copies,
activations, pooling, the scatter back onto the input -- is a third or more of a
training step, and it keeps one core busy while the other waits.  So for large enough
mini-batches the batch is cut into shards, each backpropagated by its own replica of
the network in its own thread (NumPy releases the GIL inside its loops), and the
replicas' gradients are added up (what that gains is measured by
benchmarks/sharding.py, in docs/results/speed.md).

What a run computes does not depend on how many threads ran it: the batch is always cut
into ``SHARDS`` pieces in the same places, the gradients are added in the same order,
and dropout in the replicas draws from generators seeded, step by step, from the
network's own.  A seed therefore still fixes every number, and a checkpoint (which saves
that one generator) still resumes exactly.  Batch normalisation keeps the whole batch's
statistics: the shards' copies of each batch-norm layer exchange their partial sums
mid-pass (so those shards always run in threads of their own, at the same time).

When the process has a core per shard, each shard's thread keeps to a core of its own for
the step.  Left to the operating system, a thread woken at an exchange (or at the end of
a step) tends to be woken on the core of the thread that woke it, and the two shards
then share one core until the scheduler notices -- which, with a meeting every few
milliseconds, it rarely does in time.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info

from digitlab.nn.layers import Dropout
from digitlab.nn.network import Network
from digitlab.nn.normalization import BatchNorm

#: Pieces a sharded mini-batch is cut into (one per core of the machines we run on).
SHARDS = 2
#: The smallest mini-batch worth sharding: below it a shard's few images leave each
#: operation too short to gain from a second core.
MIN_SHARDED_BATCH = 16


def shardable(network: Network) -> bool:
    """Whether sharding pays: for a convolutional network (dense ones are all matrix
    products, which BLAS already spreads over the cores)."""
    return network.convolutional


def available_threads() -> int:
    """The threads the BLAS may use -- its OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS)
    setting, else one per core -- which is the shards' budget too."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(counts, default=1)


def shard_cores(threads: int) -> list[int] | None:
    """The core each shard's thread keeps to (shard ``i`` to the ``i``-th), or None to
    leave them to the operating system.

    Shards are pinned only when this process may use exactly ``SHARDS`` cores and as many
    threads: then the shards own the process's cores and pinning crowds nothing.  On a
    larger machine several processes would all pin to the same first cores, and a
    process allowed one thread (one worker among several) should not take two cores."""
    if threads < SHARDS or not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores if len(cores) == SHARDS else None


def keep_to(cores: set[int]) -> bool:
    """Keep the calling thread to ``cores``; False where the system refuses (a container
    may), which costs only speed."""
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        return False
    return True


def replica(network: Network) -> Network:
    """A copy of ``network`` that shares its parameter values but has its own gradients
    and its own per-pass caches, so it can backpropagate another batch at the same time."""
    shared = {id(param.value): param.value for param in network.params}
    return copy.deepcopy(network, memo=shared)


class Exchange:
    """Where the shards' copies of one batch-norm layer meet mid-pass.  Each hands in its
    part; the last to arrive combines all of them, in shard order, once; every shard
    gets that one result.

    Combining once matters more than it looks: the combination is a few dozen
    operations on vectors of one number per channel, each too short to release the
    interpreter lock for long, and two threads doing them at the same time hand the lock
    back and forth after every one."""

    def __init__(self, shards: int) -> None:
        self.parts: list[object] = [None] * shards
        self.combine: Callable[[list], object] | None = None
        self.result: object = None
        self.barrier = threading.Barrier(shards, action=self._combine)

    def _combine(self) -> None:
        self.result = self.combine(self.parts)

    def gather_for(self, shard: int) -> Callable[[object, Callable[[list], object]], object]:
        def gather(part: object, combine: Callable[[list], object]) -> object:
            # A shard writes its next part only after passing this barrier, by which
            # time the combination has read this one, so one wait per meeting suffices.
            self.parts[shard] = part
            self.combine = combine
            self.barrier.wait()
            return self.result

        return gather


class ShardedGradients:
    """``network.gradients``, computed in ``SHARDS`` pieces by up to ``threads`` threads
    (always ``SHARDS`` for a network with batch normalisation, whose shards must run at
    the same time to exchange their statistics).  ``pin=False`` leaves the threads'
    placement to the operating system, to measure what keeping them to cores gains."""

    def __init__(self, network: Network, threads: int, pin: bool = True) -> None:
        self.network = network
        self.replicas = [replica(network) for _ in range(SHARDS - 1)]
        nets = [network, *self.replicas]
        self._dropouts = [
            (source, [r.layers[index] for r in self.replicas])
            for index, source in enumerate(network.layers)
            if isinstance(source, Dropout)
        ]
        self._norms = [
            [net.layers[index] for net in nets]
            for index, layer in enumerate(network.layers)
            if isinstance(layer, BatchNorm)
        ]
        workers = SHARDS - 1 if self._norms else min(threads, SHARDS) - 1
        self._cores = shard_cores(threads) if pin else None
        self._pool = (
            ThreadPoolExecutor(workers, initializer=self._pin_worker) if workers > 0 else None
        )

    def _pin_worker(self) -> None:
        """A worker thread keeps to the second core for good: it serves only shards."""
        if self._cores is not None:
            keep_to({self._cores[1]})

    def __call__(self, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> None:
        """Fill ``network``'s gradients for the batch ``(x, y)``, as ``network.gradients``."""
        n = len(x)
        if n < SHARDS:
            self.network.gradients(x, y, scale)
            return
        for source, copies in self._dropouts:
            for layer in copies:
                layer.rng = np.random.default_rng(int(source.rng.integers(2**63)))
        bounds = [n * i // SHARDS for i in range(SHARDS + 1)]
        jobs = [
            (net, slice(start, stop))
            for net, start, stop in zip(
                [self.network, *self.replicas], bounds[:-1], bounds[1:], strict=True
            )
        ]
        exchanges = self._connect_norms()
        # this (calling) thread runs the first shard, on the first core
        home = os.sched_getaffinity(0) if self._cores is not None else None
        if home is not None and not keep_to({self._cores[0]}):
            home = None

        def backpropagate(net: Network, rows: slice) -> None:
            try:
                # each shard's cost is its mean over its rows: weigh it by its share of the batch
                net.gradients(x[rows], y[rows], scale * (rows.stop - rows.start) / n)
            except BaseException:
                for exchange in exchanges:
                    exchange.barrier.abort()  # no shard waits for this one any more
                raise

        try:
            if self._pool is None:
                for job in jobs:
                    backpropagate(*job)
            else:
                pending = [self._pool.submit(backpropagate, *job) for job in jobs[1:]]
                try:
                    backpropagate(*jobs[0])
                except threading.BrokenBarrierError:
                    for future in pending:
                        future.result()  # the error of the shard that broke off, if it was one
                    raise
                for future in pending:
                    future.result()
        finally:
            if home is not None:
                keep_to(home)
            for layers in self._norms:  # the network alone works as before
                for layer in layers:
                    layer.gather = None
        for params in zip(self.network.params, *(r.params for r in self.replicas), strict=True):
            total = params[0].grad
            for other in params[1:]:
                total += other.grad

    def _connect_norms(self) -> list[Exchange]:
        """Give each batch-norm layer of each shard its place in a fresh exchange."""
        exchanges = [Exchange(SHARDS) for _ in self._norms]
        for exchange, layers in zip(exchanges, self._norms, strict=True):
            for shard, layer in enumerate(layers):
                layer.gather = exchange.gather_for(shard)
        return exchanges
