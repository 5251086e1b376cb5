"""Time one training epoch over the 50,000 training images: digitlab, PyTorch, scikit-learn.

    pip install torch==2.13.0 scikit-learn      # references, for this benchmark only
    python benchmarks/speed.py [--epochs 5] [--rounds 1] [--out docs/results/speed.md]

Every measurement runs in a fresh process (so thread settings and peak memory are its
own) with the same data, network, cost, optimiser (plain SGD; Adam for cnn-best) and
mini-batch size.
After one warm-up epoch, ``--epochs`` epochs are timed.  On a shared machine a whole
process can run 10-25 % faster or slower than the next one, so with ``--rounds N`` every
measurement is made N times, in turns (digitlab, PyTorch, scikit-learn, then again): a
row's seconds are the median over its processes of each one's median epoch, and its
ratio to PyTorch is given with its range over the rounds (each round's digitlab against
the same round's PyTorch).  A target is met when every round meets it, not met when no
round does, and otherwise within the noise.  PyTorch is run with 1 thread and with its
default, and the faster is compared against (at small batches one thread wins).
scikit-learn's MLPClassifier only has softmax + log-likelihood outputs, so it appears in
those rows only, and has no convolutions.  Targets: for the fully-connected networks, at
most half PyTorch's time at mini-batch 10 and at most its time at mini-batch 100 (and
faster than scikit-learn);
for book-ch6-conv2, at most 0.8 times PyTorch's time at mini-batches 10 and 64; for
cnn-best's network (batch norm, ReLU, dropout, Adam, its mini-batch of 64; without its
augmentation, which is not the network's work), at most PyTorch's time.

For the convolutional rows the work is counted too: the multiply-adds of a training step
(forward, the weights' gradients, and the inputs' gradients of every layer but the
first, which no framework computes), as GFLOP/s, against this machine's single-precision
matrix-multiply peak measured in the same run (a large square product on all cores): how
far each framework is from what the machine's arithmetic can do at its best.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NETWORKS = {
    "mlp30-quadratic": {
        "layers": [784, 30, 10],
        "cost": "quadratic",
        "eta": 3.0,
        "batches": (10, 100),
        "targets": {10: 0.5, 100: 1.0},
        "label": "[784,30,10] sigmoid, quadratic cost",
    },
    "mlp100-loglik": {
        "layers": [784, 100, 10],
        "cost": "log-likelihood",
        "eta": 0.1,
        "batches": (10, 100),
        "targets": {10: 0.5, 100: 1.0},
        "label": "[784,100,10] sigmoid, softmax + log-likelihood",
    },
    "book-ch6-conv2": {
        "layers": ["conv:20:5", "pool:2", "conv:40:5", "pool:2", "dense:100", "dense:10"],
        "cost": "log-likelihood",
        "eta": 0.1,
        "batches": (10, 64),
        "targets": {10: 0.8, 64: 0.8},
        "label": "book-ch6-conv2: 2 x (conv 5x5 + max-pool 2), dense 100, sigmoid",
    },
    "cnn-best": {
        "preset": "cnn-best",
        "layers": ["conv:32:5", "pool:2", "conv:64:3:same", "conv:64:3", "pool:2", "dense:512"],
        "batches": (64,),
        "targets": {64: 1.0},
        "label": "cnn-best's network: conv 32x5x5, pool, 2 x conv 64x3x3, pool, dense 512; "
        "batch norm, ReLU, dropout, Adam (no augmentation)",
    },
}
#: Side of the square matrices whose product measures the machine's peak.
PEAK_SIDE = 2048


@dataclass(frozen=True)
class Timing:
    """One framework on one row, measured in one process per round."""

    epochs: list[list[float]]  # seconds of each timed epoch, one list per process
    peak_mb: float  # the largest of the processes' peaks
    products: float | None = None  # digitlab's first-layer matrix products alone (dense)

    @property
    def per_process(self) -> list[float]:
        """Each process's median epoch."""
        return [statistics.median(times) for times in self.epochs]

    @property
    def seconds(self) -> float:
        """The row's figure: the median over processes of their median epochs."""
        return statistics.median(self.per_process)

    def spread(self) -> str:
        """The figure and its range in brackets: over the timed epochs of a single
        process, else over the processes' medians."""
        from report import spread  # not at the top: the timed workers never import it

        if len(self.epochs) == 1:
            return spread(self.epochs[0])
        return spread(self.per_process)


def verdict(ratios: list[float], target: float) -> str:
    """Whether per-round ratios meet a target: all, none, or some (within the noise)."""
    if max(ratios) <= target:
        return "yes"
    if min(ratios) > target:
        return "**no**"
    return "within the noise"


def is_conv(net: dict) -> bool:
    return isinstance(net["layers"][0], str)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def digitlab_spec(net: dict, batch: int, epochs: int):
    """The spec digitlab trains for ``net``: its preset's, without augmentation, or the
    plain SGD network the row describes."""
    from digitlab.presets import PRESETS
    from digitlab.spec import make_spec

    if "preset" in net:
        return PRESETS[net["preset"]].spec.with_overrides(
            augment="none", batch_size=batch, epochs=epochs
        )
    fields = {"cost": net["cost"], "eta": net["eta"], "batch_size": batch, "epochs": epochs}
    return make_spec({"layers": net["layers"], **fields})


def time_digitlab(net: dict, batch: int, epochs: int) -> list[float]:
    from digitlab.data import load_mnist
    from digitlab.train import Trainer

    spec = digitlab_spec(net, batch, epochs + 1)
    history = Trainer(spec, load_mnist(), use_test=False).run().history
    return [record.seconds for record in history[1:]]


def training_flops(net: dict) -> float:
    """Floating-point operations (two per multiply-add) of one image's training step: the
    forward pass, every layer's weight gradient, and every layer's input gradient but
    the first's."""
    import numpy as np

    from digitlab.nn.build import build_network
    from digitlab.nn.conv import Conv2D, Pool2D, Reshape
    from digitlab.nn.layers import Dense

    network = build_network(digitlab_spec(net, 1, 1), np.random.default_rng(0))
    shape: tuple[int, ...] = (784,)
    per_layer = []
    for layer in network.layers:
        if isinstance(layer, Reshape):
            shape = layer.shape
        elif isinstance(layer, Conv2D):
            shape = layer.output_shape(*shape)
            per_layer.append(shape[0] * shape[1] * layer.weights.value.size)
        elif isinstance(layer, Pool2D):
            shape = layer.output_shape(*shape)
        elif isinstance(layer, Dense):
            per_layer.append(layer.weights.value.size)
    return 2.0 * (3 * sum(per_layer) - per_layer[0])


def time_peak() -> float:
    """GFLOP/s of a large single-precision matrix product on all cores (median of 10)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((PEAK_SIDE, PEAK_SIDE), dtype=np.float32)
    b = rng.random((PEAK_SIDE, PEAK_SIDE), dtype=np.float32)
    out = np.empty_like(a)
    samples = []
    for _ in range(11):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        samples.append(time.perf_counter() - started)
    return 2 * PEAK_SIDE**3 / statistics.median(samples[1:]) / 1e9


def time_matrix_products(net: dict, batch: int) -> float:
    """Seconds per epoch spent in the first layer's two matrix products alone (forward
    x @ W and backward x.T @ delta), with the trainer's thread setting: the floor no
    framework overhead can go below."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from digitlab.train.trainer import SINGLE_THREAD_MAX_BATCH

    rng = np.random.default_rng(0)
    n_in, n_out = net["layers"][0], net["layers"][1]
    x = rng.random((batch, n_in), dtype=np.float32)
    weights = rng.standard_normal((n_in, n_out), dtype=np.float32)
    delta = rng.standard_normal((batch, n_out), dtype=np.float32)
    grad = np.empty_like(weights)
    steps = -(-50_000 // batch)
    threads = 1 if batch <= SINGLE_THREAD_MAX_BATCH else None
    with threadpool_limits(threads, "blas"):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(steps):
                x @ weights
                np.dot(x.T, delta, out=grad)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def time_torch(net: dict, batch: int, epochs: int, threads: int | None) -> list[float]:
    import torch

    from digitlab.data import load_mnist
    from digitlab.data.mnist import one_hot

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    train = load_mnist().train
    x = torch.from_numpy(train.images)
    quadratic = net.get("cost") == "quadratic"
    y = torch.from_numpy(one_hot(train.labels) if quadratic else train.labels)
    nn = torch.nn
    if "preset" in net:  # cnn-best's network: batch norm before each ReLU, max-pooling
        model = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 5),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1600, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(512, 10),
        )
    elif is_conv(net):  # the book-ch6-conv2 network, as torch layers
        model = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 20, 5),
            nn.Sigmoid(),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 40, 5),
            nn.Sigmoid(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(640, 100),
            nn.Sigmoid(),
            nn.Linear(100, 10),
        )
    else:
        sizes = net["layers"]
        layers = [
            torch.nn.Linear(sizes[0], sizes[1]),
            torch.nn.Sigmoid(),
            torch.nn.Linear(sizes[1], sizes[2]),
        ]
        model = torch.nn.Sequential(*layers, *([torch.nn.Sigmoid()] if quadratic else []))
    optimizer = (
        torch.optim.Adam(model.parameters(), lr=0.001)
        if "preset" in net
        else torch.optim.SGD(model.parameters(), lr=net["eta"])
    )
    log_likelihood = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            rows = order[start : start + batch]
            out = model(x[rows])
            loss = (
                0.5 * ((out - y[rows]) ** 2).sum(1).mean()
                if quadratic
                else log_likelihood(out, y[rows])
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times[1:]


def time_sklearn(net: dict, batch: int, epochs: int) -> list[float]:
    import warnings

    import numpy as np
    from sklearn.neural_network import MLPClassifier

    from digitlab.data import load_mnist

    train = load_mnist().train
    model = MLPClassifier(
        hidden_layer_sizes=(net["layers"][1],),
        activation="logistic",
        solver="sgd",
        learning_rate_init=net["eta"],
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=batch,
        shuffle=True,
        random_state=0,
    )
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs + 1):
            started = time.perf_counter()
            model.partial_fit(train.images, train.labels, classes=np.arange(10))
            times.append(time.perf_counter() - started)
    return times[1:]


def worker(args: argparse.Namespace) -> None:
    if args.worker == "peak":
        print(json.dumps({"gflops": time_peak()}))
        return
    net = NETWORKS[args.network]
    extra = {}
    if args.worker == "digitlab":
        times = time_digitlab(net, args.batch, args.epochs)
        if not is_conv(net):
            extra["products"] = time_matrix_products(net, args.batch)
    elif args.worker == "torch":
        times = time_torch(net, args.batch, args.epochs, args.threads)
    else:
        times = time_sklearn(net, args.batch, args.epochs)
    print(json.dumps({"times": times, "peak_mb": peak_mb(), **extra}))


def measure(
    framework: str, network: str = "", batch: int = 0, epochs: int = 0, threads: int | None = None
) -> dict:
    command = [sys.executable, __file__, "--worker", framework]
    if network:
        command += ["--network", network, "--batch", str(batch), "--epochs", str(epochs)]
    if threads:
        command += ["--threads", str(threads)]
    print("running", " ".join(command[2:]), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_rounds(
    frameworks: dict[str, tuple[str, int | None]],
    network: str,
    batch: int,
    epochs: int,
    rounds: int,
) -> dict[str, Timing]:
    """Each of ``frameworks`` (name: framework and thread setting) measured in ``rounds``
    fresh processes, taking turns, so a slow spell of the machine falls on all of them
    alike."""
    results: dict[str, list[dict]] = {name: [] for name in frameworks}
    for _ in range(rounds):
        for name, (framework, threads) in frameworks.items():
            results[name].append(measure(framework, network, batch, epochs, threads))
    return {
        name: Timing(
            [run["times"] for run in runs],
            max(run["peak_mb"] for run in runs),
            statistics.median(run["products"] for run in runs) if "products" in runs[0] else None,
        )
        for name, runs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--epochs", type=int, default=5, help="timed epochs per measurement (after 1 warm-up)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="processes per measurement, taken in turns (default 1)",
    )
    parser.add_argument(
        "--networks",
        nargs="+",
        choices=list(NETWORKS),
        default=list(NETWORKS),
        help="rows to measure (default: all)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results/speed.md"))
    parser.add_argument(
        "--worker", choices=["digitlab", "torch", "sklearn", "peak"], help=argparse.SUPPRESS
    )
    parser.add_argument("--network", choices=list(NETWORKS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    sys.path.insert(0, str(Path(__file__).parent))
    from report import machine, table, write

    if args.epochs < 1 or args.rounds < 1:
        parser.error("--epochs and --rounds must be at least 1")
    peak = measure("peak")["gflops"]
    rows = []
    for network in args.networks:
        net = NETWORKS[network]
        frameworks = {"ours": ("digitlab", None), "torch 1": ("torch", 1), "torch": ("torch", None)}
        if net.get("cost") == "log-likelihood" and not is_conv(net):
            frameworks["sklearn"] = ("sklearn", None)
        for batch in net["batches"]:
            timings = measure_rounds(frameworks, network, batch, args.epochs, args.rounds)
            ours, sk = timings["ours"], timings.get("sklearn")
            torch_name = min(("torch 1", "torch"), key=lambda name: timings[name].seconds)
            torch_best = timings[torch_name]
            threads = "1" if torch_name == "torch 1" else "default"
            work = "—"
            if is_conv(net):
                epoch_gflop = 50_000 * training_flops(net) / 1e9
                rates = [epoch_gflop / timing.seconds for timing in (ours, torch_best)]
                work = " / ".join(f"{rate:.0f} ({100 * rate / peak:.0f} %)" for rate in rates)
            ratios = [a / b for a, b in zip(ours.per_process, torch_best.per_process, strict=True)]
            ratio = ours.seconds / torch_best.seconds
            products = ours.products
            share = products and 100 * products / ours.seconds
            sk_ratio = ours.seconds / sk.seconds if sk else None
            target = net["targets"][batch]
            met = verdict(ratios, target)
            if sk_ratio is not None and sk_ratio >= 1:
                met = "**no**"
            ratio_text = f"{ratio:.2f}"
            if len(ratios) > 1:
                ratio_text += f" ({min(ratios):.2f}–{max(ratios):.2f})"
            rows.append(
                [
                    net["label"],
                    batch,
                    ours.spread(),
                    f"{products:.2f} ({share:.0f} %)" if products else "—",
                    f"{torch_best.spread()} ({threads} threads)",
                    sk.spread() if sk else "—",
                    ratio_text,
                    work,
                    f"{sk_ratio:.2f}" if sk_ratio else "—",
                    f"≤ {target}" + (" and < 1 vs sklearn" if sk else ""),
                    met,
                    f"{ours.peak_mb:.0f} / {torch_best.peak_mb:.0f}"
                    + (f" / {sk.peak_mb:.0f}" if sk else ""),
                ]
            )
    header = [
        "network",
        "batch",
        "digitlab s/epoch",
        "of which first-layer matrix products",
        "PyTorch s/epoch",
        "scikit-learn s/epoch",
        "ours / PyTorch",
        "GFLOP/s ours / PyTorch (of peak)",
        "ours / sklearn",
        "target",
        "met",
        "peak memory MB (ours / torch / sklearn)",
    ]
    if args.rounds == 1:
        timing_text = (
            f"Seconds per epoch are the median over {args.epochs} timed epochs after one "
            "warm-up, with the range in brackets."
        )
    else:
        timing_text = (
            f"Every measurement was made in {args.rounds} processes, taken in turns; each "
            f"timed {args.epochs} epoch{'s' * (args.epochs > 1)} after one warm-up.  Seconds "
            "per epoch are the median over the processes of each one's median epoch, with the "
            "range over processes in brackets; the ratio's range is over the rounds (each "
            "round's digitlab against the same round's PyTorch), and a target is met when "
            "every round meets it, within the noise when only some do."
        )
    chosen = args.networks != list(NETWORKS)
    networks = f" --networks {' '.join(args.networks)}" if chosen else ""
    rounds = f" --rounds {args.rounds}" if args.rounds > 1 else ""
    text = f"""# Training speed: one epoch over 50,000 images

Generated by `python benchmarks/speed.py --epochs {args.epochs}{rounds}{networks}`. {machine()}

{timing_text}  Every framework trains the same network with the same optimiser
(plain SGD; Adam for cnn-best) at the same mini-batch size in its own process.
PyTorch (2.13.0, CPU) is shown at its faster thread setting.  Ratios below 1 mean
digitlab is faster; the targets are in the script's docstring.  "Of which first-layer
matrix products" times the two largest BLAS calls of a step (x @ W and x.T @ delta) alone over an
epoch's steps, on random data of the same shapes: the floor that no framework overhead
can go below, which both frameworks pay.  Peak memory is the whole
process's peak resident size, MNIST (loaded as float32, about 190 MB) included.
GFLOP/s counts a convolutional network's training work (see the script's docstring)
against this machine's single-precision matrix-multiply peak, measured in the same run
at {peak:.0f} GFLOP/s ({PEAK_SIDE}x{PEAK_SIDE} product, all cores).

{table(header, rows)}
"""
    write(args.out, text)


if __name__ == "__main__":
    main()
