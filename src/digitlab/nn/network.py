"""The network: a stack of layers ending in a cost.

``gradients`` is backpropagation for a whole mini-batch: one forward pass through the
layers, the cost's output error ``delta``, then each layer's ``backward`` in reverse,
which leaves every parameter's gradient in ``param.grad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.nn.conv import Conv2D
from digitlab.nn.costs import Cost
from digitlab.nn.layers import Layer, Parameter

#: Rows per forward pass when evaluating many images, to bound memory.  Convolutional
#: networks use fewer: their patch matrices are large (for 1,000 images, 205 MB in
#: cnn-5x5's second convolution), and at 256 rows evaluation measured 1.3-1.6x faster
#: than at 1,000 (memory traffic), while dense networks were fastest at 1,000.
EVAL_CHUNK = 1_000
EVAL_CHUNK_CONV = 256


@dataclass(frozen=True)
class Outputs:
    """A batch's output-layer ``z`` and, for a convolutional network, each row's
    features (channels averaged over positions; see :meth:`Network.logits_and_features`)."""

    logits: np.ndarray
    features: np.ndarray | None


class Network:
    """A stack of layers and the cost on top of them, which owns the output activation.

    Built from a spec by :func:`digitlab.nn.build.build_network`.  It works on batches of
    rows of pixels already in its own form (float32 in [0, 1]): :meth:`forward` and
    :meth:`gradients` for training, :meth:`logits`, :meth:`probabilities` and
    :meth:`predict` for any number of rows, in chunks.  Users' arrays in other forms go
    through :class:`digitlab.nn.model_file.Model`, whose ``predict`` checks and scales
    them first.
    """

    def __init__(self, layers: list[Layer], cost: Cost) -> None:
        self.layers = layers
        self.cost = cost
        # The first layer with weights sees the data (perhaps reshaped): the backward pass
        # ends there, and that layer need not compute a gradient for its input.
        first = next((i for i, layer in enumerate(layers) if layer.params), 0)
        if layers and layers[first].params:
            layers[first].propagate = False
        self._backward_layers = layers[first:][::-1]
        self.params: list[Parameter] = [p for layer in layers for p in layer.params]
        self.convolutional = any(isinstance(layer, Conv2D) for layer in layers)
        self.eval_chunk = EVAL_CHUNK_CONV if self.convolutional else EVAL_CHUNK
        self.buffers: list[np.ndarray] = [b for layer in layers for b in layer.buffers]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The output layer's weighted input ``z`` for a batch ``x``."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def gradients(self, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Backpropagate the mini-batch ``(x, y)``, filling every ``param.grad`` with
        ``scale`` times the gradient of the cost; return the output layer's ``z``."""
        z = self.forward(x, training=True)
        delta = self.cost.delta(z, y)
        if scale != 1.0:
            delta *= delta.dtype.type(scale)
        for layer in self._backward_layers:
            delta = layer.backward(delta)
        return z

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``z`` for any number of rows, in chunks so memory stays bounded."""
        chunk = self.eval_chunk
        return np.concatenate([self.forward(x[i : i + chunk]) for i in range(0, len(x), chunk)])

    def logits_and_features(self, x: np.ndarray) -> Outputs:
        """``z`` for any number of rows, in chunks, with each row's *features*: the last
        four-dimensional activation (the convolutions' output, as the dense layers
        receive it) averaged over positions, one value per channel.  A network without
        convolutions has no such features (None).  One pass serves both, so asking for
        the features costs nothing more than the answer."""
        chunk = self.eval_chunk
        chunks = [self._forward_with_features(x[i : i + chunk]) for i in range(0, len(x), chunk)]
        z = np.concatenate([chunk.logits for chunk in chunks])
        if chunks[0].features is None:
            return Outputs(z, None)
        return Outputs(z, np.concatenate([chunk.features for chunk in chunks]))

    def _forward_with_features(self, x: np.ndarray) -> Outputs:
        features = None
        for layer in self.layers:
            x = layer.forward(x, False)
            if x.ndim == 4:
                features = x
        return Outputs(x, None if features is None else features.mean(axis=(1, 2)))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The output activations ``a`` (probabilities for softmax outputs)."""
        return self.cost.output(self.logits(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The digit each row of ``x`` most likely shows."""
        return self.probabilities(x).argmax(axis=1)

    def evaluate(self, x: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """Mean cost (without penalties) and accuracy against one-hot ``targets``."""
        z = self.logits(x)
        accuracy = float((self.cost.output(z).argmax(axis=1) == targets.argmax(axis=1)).mean())
        return self.cost.value(z, targets), accuracy

    def arrays(self) -> list[np.ndarray]:
        """Everything a saved network needs: the parameters, then the untrained buffers."""
        return [p.value for p in self.params] + self.buffers

    def load_arrays(self, arrays: list[np.ndarray]) -> None:
        """Copy parameter and buffer values in, checking each shape matches."""
        targets = self.arrays()
        if len(arrays) != len(targets):
            raise ValueError(f"expected {len(targets)} arrays, got {len(arrays)}")
        for target, array in zip(targets, arrays, strict=True):
            if array.shape != target.shape:
                raise ValueError(f"array of shape {array.shape} for a parameter of {target.shape}")
            target[...] = array
