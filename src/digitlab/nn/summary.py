"""A model described for a person: its layers with their output shapes and parameter
counts, the spec it was trained with, what training recorded, its calibration and the
version of its file -- what ``Model.summary()`` prints and ``digitlab info`` shows.

Output shapes are found by passing one blank image through the network, so they are
the shapes the layers really produce (padding, pooling and reshapes included), not a
second account of how :mod:`digitlab.nn.build` plans them.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab.nn.network import Network
from digitlab.spec import Spec, spec_to_argv

if TYPE_CHECKING:
    from digitlab.nn.model_file import Calibration, TrainingMetrics


@dataclass(frozen=True)
class LayerSummary:
    """One layer: its kind (the layer's class, e.g. ``Dense``; the output activation,
    which belongs to the cost, is marked "(output)"), the shape of its output for one
    image, and how many numbers it holds (trained parameters and untrained state alike)."""

    kind: str
    output_shape: tuple[int, ...]
    parameters: int


@dataclass(frozen=True)
class ModelSummary:
    """Everything a model file says about its network, in one typed record.

    ``untrained_values`` are numbers saved with the weights but not learned by gradient
    descent: batch normalisation's running means and variances.
    """

    format_version: int
    layers: tuple[LayerSummary, ...]
    trainable_parameters: int
    untrained_values: int
    spec: Spec
    metrics: TrainingMetrics
    calibration: Calibration | None
    started_from: str | None = None
    trained_on: str | None = None

    @classmethod
    def of(
        cls,
        spec: Spec,
        network: Network,
        metrics: TrainingMetrics,
        calibration: Calibration | None,
        format_version: int,
        started_from: str | None = None,
        trained_on: str | None = None,
    ) -> ModelSummary:
        """The summary of ``network`` as ``spec`` built it, with what its file records."""
        layers = []
        x = np.zeros((1, spec.input_size), dtype=np.float32)
        for layer in network.layers:
            x = layer.forward(x)
            held = sum(p.value.size for p in layer.params) + sum(b.size for b in layer.buffers)
            layers.append(LayerSummary(type(layer).__name__, x.shape[1:], held))
        output = type(network.cost.activation).__name__
        layers.append(LayerSummary(f"{output} (output)", x.shape[1:], 0))
        return cls(
            format_version=format_version,
            layers=tuple(layers),
            trainable_parameters=sum(p.value.size for p in network.params),
            untrained_values=sum(b.size for b in network.buffers),
            spec=spec,
            metrics=metrics,
            calibration=calibration,
            started_from=started_from,
            trained_on=trained_on,
        )

    @property
    def total_parameters(self) -> int:
        return self.trainable_parameters + self.untrained_values

    @property
    def train_command(self) -> str:
        """The ``digitlab train`` command that trains this spec again."""
        return shlex.join(["digitlab", "train", *spec_to_argv(self.spec)])

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (``digitlab info --json``)."""
        return {
            "format_version": self.format_version,
            "layers": [asdict(layer) for layer in self.layers],
            "trainable_parameters": self.trainable_parameters,
            "untrained_values": self.untrained_values,
            "total_parameters": self.total_parameters,
            "spec": self.spec.model_dump(),
            "train_command": self.train_command,
            "started_from": self.started_from,
            "trained_on": self.trained_on,
            "metrics": self.metrics.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }

    def text(self) -> str:
        """A table of the layers, the totals, then the spec, metrics and calibration."""
        rows = [("Layer", "Output shape", "Parameters")] + [
            (layer.kind, str(layer.output_shape), f"{layer.parameters:,}") for layer in self.layers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        rule = "-" * (sum(widths) + 4)
        table = [
            f"{kind:<{widths[0]}}  {shape:<{widths[1]}}  {count:>{widths[2]}}"
            for kind, shape, count in rows
        ]
        lines = [
            f"digitlab model (file format version {self.format_version})",
            table[0],
            rule,
            *table[1:],
            rule,
            f"Trainable parameters: {self.trainable_parameters:,}",
        ]
        if self.untrained_values:
            lines.append(f"Untrained values (batch-norm statistics): {self.untrained_values:,}")
        differs = []  # what the spec's command would do otherwise than this model's run
        if self.started_from is not None:
            lines.append(f"Started from: {self.started_from}")
            differs.append("starts from fresh weights")
        if self.trained_on is not None:
            lines.append(f"Trained on: {self.trained_on}")
            differs.append("trains on MNIST")
        if differs:
            lines.append(
                "Spec of that last run, as a command (other fields at their defaults); it "
                f"{' and '.join(differs)}, so it trains another model, not this one:"
            )
        else:
            lines.append(
                "Spec, as the command that trains it again (other fields at their defaults):"
            )
        lines.append(f"  {self.train_command}")
        recorded = self.metrics.to_dict()
        lines.append("Metrics:" if recorded else "Metrics: none")
        width = max((len(name) for name in recorded), default=0)
        lines += [f"  {name:<{width}}  {_number(value)}" for name, value in recorded.items()]
        lines.append(f"Calibration: {self._calibration_text()}")
        return "\n".join(lines)

    def _calibration_text(self) -> str:
        found = self.calibration
        if found is None:
            return "none (`digitlab calibrate MODEL` fits it)"
        return (
            f"temperature {found.temperature:.3f}; validation NLL {found.validation_nll[0]:.4f}"
            f" -> {found.validation_nll[1]:.4f}, ECE {found.validation_ece[0]:.2%} -> "
            f"{found.validation_ece[1]:.2%}; unsure below a top probability of "
            f"{found.unsure_below:.3f}"
            + (
                ""
                if found.unlike_above is None
                else f", or when its features lie further than {found.unlike_above:.1f} "
                "(squared Mahalanobis distance) from every digit's"
            )
        )


def _number(value: Any) -> str:
    """A recorded metric as text: floats to six significant digits, others as they are."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
