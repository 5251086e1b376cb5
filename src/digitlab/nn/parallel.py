"""Data parallelism on a multi-core CPU: one mini-batch, two halves, two threads.

Only NumPy's matrix products (BLAS) use several cores; every other NumPy call runs on
one.  In a convolutional network the work between the products -- the im2col copies,
activations, pooling, the scatter back onto the input -- is a third or more of a
training step, and it keeps one core busy while the other waits.  So for large enough
mini-batches the batch is cut into shards, each backpropagated by its own replica of
the network in its own thread (NumPy releases the GIL inside its loops), and the
replicas' gradients are added up (what that gains is measured by
benchmarks/sharding.py, in docs/results/sharding.md).

What a run computes does not depend on how many threads ran it: the batch is always cut
into ``SHARDS`` pieces in the same places, the gradients are added in the same order,
and dropout in the replicas draws from generators seeded, step by step, from the
network's own.  A seed therefore still fixes every number, and a checkpoint (which saves
that one generator) still resumes exactly.  Batch normalisation keeps the whole batch's
statistics: the shards' copies of each batch-norm layer exchange their partial sums
mid-pass (so those shards always run in threads of their own, at the same time).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

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


def replica(network: Network) -> Network:
    """A copy of ``network`` that shares its parameter values but has its own gradients
    and its own per-pass caches, so it can backpropagate another batch at the same time."""
    shared = {id(param.value): param.value for param in network.params}
    return copy.deepcopy(network, memo=shared)


class Exchange:
    """Where the shards' copies of one batch-norm layer meet mid-pass.  Each hands in its
    part; the last to arrive combines all of them, in shard order, once; every shard
    gets that one result.

    Combining once spares the other shards the combination: a few dozen operations on
    vectors of one number per channel, each too short to run alongside another thread's
    under the interpreter lock."""

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


class Workers:
    """The calling thread and ``count - 1`` more, to run a few jobs at once."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool = ThreadPoolExecutor(count - 1) if count > 1 else None

    def run(self, jobs: Sequence[Callable[[], None]]) -> None:
        """Run ``jobs`` at once (at most ``count`` of them), the first in the calling
        thread, and return when every one has finished -- also when one fails, so no
        thread is still changing the arrays when the error arrives.  With no other
        thread (``count`` 1), any number of jobs run one after another.  The first job's
        error is raised, unless it only gave up waiting at a barrier (BrokenBarrierError)
        that another job broke: then that job's error."""
        if self._pool is None:
            for job in jobs:
                job()
            return
        if len(jobs) > self.count:  # one would wait for a thread: a deadlock at a barrier
            raise ValueError(f"{len(jobs)} jobs for {self.count} threads")
        pending = [self._pool.submit(job) for job in jobs[1:]]
        try:
            jobs[0]()
        except threading.BrokenBarrierError:
            for future in pending:
                future.result()  # the error of the job that broke the barrier
            raise
        finally:
            wait(pending)
        for future in pending:
            future.result()


class ShardedGradients:
    """``network.gradients``, computed in ``SHARDS`` pieces by up to ``threads`` threads
    (always ``SHARDS`` for a network with batch normalisation, whose shards must run at
    the same time to exchange their statistics)."""

    def __init__(self, network: Network, threads: int) -> None:
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
        self.workers = Workers(SHARDS if self._norms else min(threads, SHARDS))

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
        exchanges = self._connect_norms()

        def backpropagate(net: Network, rows: slice) -> Callable[[], None]:
            def job() -> None:
                try:
                    # each shard's cost is its mean over its rows: weigh it by its share
                    net.gradients(x[rows], y[rows], scale * (rows.stop - rows.start) / n)
                except BaseException:
                    for exchange in exchanges:
                        exchange.barrier.abort()  # no shard waits for this one any more
                    raise

            return job

        nets = [self.network, *self.replicas]
        try:
            self.workers.run(
                [
                    backpropagate(net, slice(start, stop))
                    for net, start, stop in zip(nets, bounds[:-1], bounds[1:], strict=True)
                ]
            )
        finally:
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
