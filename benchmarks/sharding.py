"""What cutting a mini-batch into shards gains: one training step, five ways.

    python benchmarks/sharding.py [--rounds 5] [--steps 60] [--out docs/results/sharding.md]

A convolutional network's training step is timed on random images at several
mini-batch sizes.  First its gradients alone (forward and backward):

- as one batch on one core (the BLAS limited to one thread);
- as one batch with the BLAS on every core (only the matrix products use them), which
  is how training runs an unsharded convolutional network;
- cut into shards backpropagated by threads of their own (digitlab.nn.parallel), as
  training runs them.

Then the whole step, the shards' gradients and the optimiser's update of the weights
(the network's own optimiser; its learning rate set to 0, so that every step does the
same work on the same weights):

- with the update on one thread;
- with the update shared among the shards' threads, as training runs it.

The five are taken in turns within one process, ``--rounds`` times; each round's figure
is the median of ``--steps`` steps, and a row gives the median over rounds with their
range.  On a shared machine the rounds differ by 10-30 %, so compare figures within a
row, not across rows or runs.  The machine's other work should be stopped: the step uses
both cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digitlab.nn.build import build_network
from digitlab.nn.optimizers import make_optimizer
from digitlab.nn.parallel import MIN_SHARDED_BATCH, SHARDS, ShardedGradients, available_threads
from digitlab.presets import PRESETS
from digitlab.spec import Spec

CASES = [("book-ch6-conv2", batch) for batch in (8, 10, 16, 32, 64)] + [("cnn-best", 64)]
WAYS = [
    "one batch, one core",
    "one batch, BLAS on all cores",
    "two shards",
    "two shards + update on one thread",
    "two shards + shared update",
]


def spec_for(name: str, batch: int) -> Spec:
    """The network of ``name`` at mini-batch ``batch`` (cnn-best without augmentation)."""
    if name == "cnn-best":
        return PRESETS["cnn-best"].spec.with_overrides(augment="none", batch_size=batch)
    return PRESETS[name].spec.with_overrides(batch_size=batch)


def step_times(step: Callable[[], None], steps: int, threads: int) -> float:
    """Median milliseconds of ``step`` over ``steps`` calls, after a few to warm up."""
    with threadpool_limits(threads, "blas"):
        for _ in range(3):
            step()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def measure(name: str, batch: int, rounds: int, steps: int) -> dict[str, list[float]]:
    """Each way's per-round median step time (ms) for ``name`` at mini-batch ``batch``."""
    spec = spec_for(name, batch)
    network = build_network(spec, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.random((batch, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    cores = available_threads()
    sharded = ShardedGradients(network, cores)
    optimizer = make_optimizer(
        spec.optimizer, network.params, 0.0, spec.momentum, spec.lmbda, spec.l1, 50_000
    )
    scale = optimizer.gradient_scale

    def update_on_one_thread() -> None:
        sharded(x, y, scale)
        optimizer.step()

    def shared_update() -> None:
        sharded(x, y, scale)
        sharded.workers.run(optimizer.step_parts(SHARDS))

    ways = {
        WAYS[0]: (lambda: network.gradients(x, y, scale), 1),
        WAYS[1]: (lambda: network.gradients(x, y, scale), cores),
        WAYS[2]: (lambda: sharded(x, y, scale), 1),
        WAYS[3]: (update_on_one_thread, 1),
        WAYS[4]: (shared_update, 1),
    }
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(rounds):
        for way, (step, threads) in ways.items():
            results[way].append(step_times(step, steps, threads))
    return results


def ratios(slower: list[float], faster: list[float]) -> list[float]:
    """Round by round, how many times ``faster``'s time goes into ``slower``'s."""
    return [a / b for a, b in zip(slower, faster, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="turns of the five ways")
    parser.add_argument("--steps", type=int, default=60, help="steps timed per way and round")
    parser.add_argument("--out", type=Path, default=Path("docs/results/sharding.md"))
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    sys.path.insert(0, str(Path(__file__).parent))
    from report import machine, spread, table, write

    rows = []
    for name, batch in CASES:
        print(f"{name} at mini-batch {batch} ...", flush=True)
        results = measure(name, batch, args.rounds, args.steps)
        shards_gain = ratios(results[WAYS[1]], results[WAYS[2]])
        update_gain = ratios(results[WAYS[3]], results[WAYS[4]])
        sharded = "yes" if batch >= MIN_SHARDED_BATCH else "no"
        times = [spread(results[way]) for way in WAYS]
        rows.append([name, batch, *times, spread(shards_gain), spread(update_gain), sharded])
    header = ["network", "batch", *(f"{way} (ms)" for way in WAYS)]
    header += ["all cores / two shards", "update on one / shared", "training shards it"]
    text = f"""# Sharded training steps: what a second core gains

Generated by `python benchmarks/sharding.py --rounds {args.rounds} --steps {args.steps}`. \
{machine()}

One training step on random images, in milliseconds: the gradients alone (the first
three ways), then with the optimiser's update (the last two).  Each figure is the median
over {args.rounds} rounds, each the median of {args.steps} steps, with the range over rounds;
the ways were taken in turns within one process, and a ratio is taken round by round.
A shard is 1/{SHARDS} of the mini-batch; training shards mini-batches of {MIN_SHARDED_BATCH} or
more (digitlab.nn.parallel.MIN_SHARDED_BATCH), and shares the update when it shards.
book-ch6-conv2 trains with plain SGD (an update of one subtraction), cnn-best with Adam.

{table(header, rows)}
"""
    write(args.out, text)


if __name__ == "__main__":
    main()
