"""Exporting a model to ONNX, so other runtimes can run it without digitlab.

The exported graph keeps our contract: it reads rows of 784 float32 pixels in [0, 1]
(any number of rows) and answers ten probabilities per row -- the same numbers
:meth:`Model.probabilities <digitlab.nn.model_file.Model.probabilities>` gives,
calibrated when the model is.  So the graph ends as that method does: softmax outputs
are probabilities already; other outputs are clipped at zero and normalised (uniform
where all are zero); a calibrated model's probabilities are then tempered by its
temperature.

Every layer maps to standard operators: dense layers to ``Gemm``, convolutions and
pooling to ``Conv``, ``MaxPool`` and ``AveragePool``, batch norm to
``BatchNormalization`` with the running statistics and our epsilon, and dropout to
nothing (it only acts while training).  The graph is built from the network's own
layer list, in its order, so it computes exactly what the engine does.

Our feature maps are channels-last; ONNX's convolutions and pooling are
channels-first.  The graph therefore transposes where rows of pixels become images
(channels-last to channels-first) and back where feature maps are flattened for the
dense layers, which keeps every weight in the meaning it was trained with.

``onnx`` is an optional dependency (``pip install 'digitlab[onnx]'``); without it the
export stops with one line saying so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitlab import __version__
from digitlab.atomic import atomic_write
from digitlab.errors import DigitlabError
from digitlab.nn.activations import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from digitlab.nn.conv import Conv2D, Pool2D, Reshape
from digitlab.nn.layers import Dense, Dropout, Layer
from digitlab.nn.model_file import (
    LOG_FLOOR,
    PROVENANCE,
    Model,
    require_file_form,
    require_model,
)
from digitlab.nn.normalization import EPSILON, BatchNorm
from digitlab.presets import preset_of
from digitlab.spec import DIGITS, PIXELS, check_digit_network

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the optional extra is missing: _require_onnx says how to add it
    onnx = None

#: The operator set the graph declares: it has every operator the graph uses, and
#: runtimes from 2022 on (onnxruntime 1.12 and later) read it.
OPSET = 17
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
#: The model's description inside the file, for anyone opening it in another tool.
CONTRACT = (
    f"Handwritten-digit recogniser exported by digitlab. Input '{INPUT_NAME}': float32 "
    f"(N, {PIXELS}), rows of 28x28 pixels in [0, 1], white digit on black, row by row. "
    f"Output '{OUTPUT_NAME}': float32 (N, {DIGITS}), the probability of each digit 0-9."
)
ELEMENTWISE = {Sigmoid: "Sigmoid", Tanh: "Tanh", ReLU: "Relu"}
POOLING = {"max": "MaxPool", "avg": "AveragePool"}


@dataclass
class _Graph:
    """The nodes and weights of the graph being built; each value is named by the node
    (or weight) that makes it."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)

    def constant(self, name: str, array: np.ndarray) -> str:
        values = np.asarray(array)
        if values.dtype.kind == "f":
            values = values.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name


def _dense(graph: _Graph, layer: Dense, x: str, name: str) -> str:
    weights = graph.constant(f"{name}.weights", layer.weights.value)
    biases = graph.constant(f"{name}.biases", layer.biases.value)
    return graph.op("Gemm", [x, weights, biases], name)


def _conv(graph: _Graph, layer: Conv2D, x: str, name: str) -> str:
    k, c, f = layer.kernel, layer.channels, layer.filters
    # ours: (K*K*C, F), rows in (row, column, channel) order; ONNX: (F, C, K, K)
    filters = layer.weights.value.reshape(k, k, c, f).transpose(3, 2, 0, 1)
    weights = graph.constant(f"{name}.weights", filters)
    biases = graph.constant(f"{name}.biases", layer.biases.value)
    # 'same' padding of an even kernel puts its odd row and column after the image
    pads = [layer.pad, layer.pad, layer.pad_after, layer.pad_after]
    return graph.op("Conv", [x, weights, biases], name, kernel_shape=[k, k], pads=pads)


def _pool(graph: _Graph, layer: Pool2D, x: str, name: str) -> str:
    s = layer.size
    return graph.op(POOLING[layer.mode], [x], name, kernel_shape=[s, s], strides=[s, s])


def _batch_norm(graph: _Graph, layer: BatchNorm, x: str, name: str) -> str:
    arrays = {
        "scale": layer.scale.value,
        "shift": layer.shift.value,
        "running_mean": layer.running_mean,
        "running_var": layer.running_var,
    }
    inputs = [graph.constant(f"{name}.{key}", array) for key, array in arrays.items()]
    return graph.op("BatchNormalization", [x, *inputs], name, epsilon=EPSILON)


def _reshape(graph: _Graph, layer: Reshape, x: str, name: str) -> str:
    """Rows of pixels to channels-first images, or feature maps back to rows in our
    channels-last order (the order the next dense layer's weights expect)."""
    if len(layer.shape) == 3:
        height, width, channels = layer.shape
        shape = graph.constant(f"{name}.shape", np.array([-1, height, width, channels]))
        images = graph.op("Reshape", [x, shape], f"{name}.channels_last")
        return graph.op("Transpose", [images], name, perm=[0, 3, 1, 2])
    channels_last = graph.op("Transpose", [x], f"{name}.channels_last", perm=[0, 2, 3, 1])
    return graph.op("Flatten", [channels_last], name, axis=1)


def _activation(graph: _Graph, layer: Layer, x: str, name: str) -> str:
    if isinstance(layer, LeakyReLU):
        return graph.op("LeakyRelu", [x], name, alpha=layer.alpha)
    return graph.op(ELEMENTWISE[type(layer)], [x], name)


def _unchanged(graph: _Graph, layer: Layer, x: str, name: str) -> str:
    """Dropout at inference, and the linear activation: the input itself."""
    return x


def _softmax(graph: _Graph, layer: Softmax, x: str, name: str) -> str:
    return graph.op("Softmax", [x], name, axis=1)


CONVERTERS: dict[type, Callable[[_Graph, Layer, str, str], str]] = {
    Dense: _dense,
    Conv2D: _conv,
    Pool2D: _pool,
    BatchNorm: _batch_norm,
    Reshape: _reshape,
    Dropout: _unchanged,
    Linear: _unchanged,
    Sigmoid: _activation,
    Tanh: _activation,
    ReLU: _activation,
    LeakyReLU: _activation,
    Softmax: _softmax,
}


def _convert(graph: _Graph, layer: Layer, x: str, name: str) -> str:
    converter = CONVERTERS.get(type(layer))
    if converter is None:
        raise DigitlabError(f"cannot export a {type(layer).__name__} layer to ONNX")
    return converter(graph, layer, x, name)


def _exact_sigmoid(graph: _Graph, x: str, name: str) -> str:
    """1 / (1 + e^-x) from Exp and Reciprocal, accurate to float32's relative precision,
    as the probabilities a model reports are (:meth:`~digitlab.nn.model_file.Model.
    raw_reading`).  onnxruntime's Sigmoid gives 0 below about x = -18, where the true value
    is still 1e-8: a temperature above 1 would raise that difference into view."""
    exponentials = graph.op("Exp", [graph.op("Neg", [x], f"{name}.negated")], f"{name}.exp")
    one = graph.constant(f"{name}.one", np.float32(1))
    return graph.op("Reciprocal", [graph.op("Add", [exponentials, one], f"{name}.sum")], name)


def _normalised(graph: _Graph, outputs: str) -> str:
    """Outputs clipped at zero and scaled to sum to one; uniform where all are zero."""
    positive = graph.op("Relu", [outputs], "clipped")
    axes = graph.constant("digit_axis", np.array([1]))
    totals = graph.op("ReduceSum", [positive, axes], "totals", keepdims=1)
    zero = graph.constant("zero", np.float32(0))
    any_positive = graph.op("Greater", [totals, zero], "any_positive")
    shares = graph.op("Div", [positive, totals], "shares")
    uniform = graph.constant("uniform", np.float32(1 / DIGITS))
    return graph.op("Where", [any_positive, shares, uniform], "normalised")


def _tempered(graph: _Graph, probabilities: str, temperature: float) -> str:
    """softmax(log p / T), the log floored as
    :func:`~digitlab.nn.model_file.log_probabilities` floors it."""
    logs = graph.op("Log", [probabilities], "log_probabilities")
    floor = graph.constant("log_floor", np.float32(LOG_FLOOR))
    floored = graph.op("Max", [logs, floor], "floored_log_probabilities")
    divisor = graph.constant("temperature", np.float32(temperature))
    scaled = graph.op("Div", [floored, divisor], "tempered_logits")
    return graph.op("Softmax", [scaled], "calibrated", axis=1)


def _require_onnx() -> None:
    if onnx is None:
        raise DigitlabError("ONNX export needs the onnx package: pip install 'digitlab[onnx]'")


def to_onnx(model: Model) -> onnx.ModelProto:
    """The model as a checked ONNX graph from pixels to class probabilities, with its
    spec, preset name, metrics and calibration in the file's metadata."""
    _require_onnx()
    model = require_model(model, "to_onnx(model)", "load it with load_model(path) first")
    require_file_form(model, "to_onnx(model)")
    check_digit_network(model.spec)
    graph = _Graph()
    x = INPUT_NAME
    for index, layer in enumerate(model.network.layers):
        x = _convert(graph, layer, x, f"layer{index}.{type(layer).__name__.lower()}")
    output = model.network.cost.activation
    if isinstance(output, Sigmoid):
        x = _exact_sigmoid(graph, x, "output_activation")
    else:
        x = _convert(graph, output, x, "output_activation")
    if model.spec.resolved_output_activation != "softmax":
        x = _normalised(graph, x)
    if model.calibration is not None:
        x = _tempered(graph, x, model.calibration.temperature)
    graph.op("Identity", [x], OUTPUT_NAME)
    name = preset_of(model.spec) or "digitlab-network"
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", PIXELS])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", DIGITS])],
            initializer=graph.initializers,
        ),
        producer_name="digitlab",
        producer_version=__version__,
        doc_string=CONTRACT,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)]),
    )
    metadata = {
        "name": name,
        "spec": json.dumps(model.spec.model_dump()),
        "metrics": json.dumps(model.metrics.to_dict()),
    }
    for name in PROVENANCE:  # where its spec alone would not train it again
        if getattr(model, name) is not None:
            metadata[name] = getattr(model, name)
    if model.calibration is not None:
        # the graph answers probabilities only: its users judge doubt by the top
        # probability alone, so that is the threshold they get
        alone = model.calibration.by_top_probability_alone()
        metadata["calibration"] = json.dumps(alone.to_dict())
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Model, path: Path) -> None:
    """Write ``model`` to ``path`` as an ONNX file (see :func:`to_onnx`), atomically."""
    model = require_model(model, "export_onnx(model, path)", "the model comes first")
    require_file_form(model, "export_onnx(model, path)")
    serialized = to_onnx(model).SerializeToString()
    atomic_write(Path(path), lambda handle: handle.write(serialized))
