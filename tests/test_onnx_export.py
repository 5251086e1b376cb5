"""ONNX export: the exported graph, run by onnxruntime, gives our own probabilities."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import DigitlabError, SpecError
from digitlab.interop import onnx_export
from digitlab.nn.build import build_network
from digitlab.nn.layers import Layer
from digitlab.nn.model_file import Calibration, Model, TrainingMetrics, load_model, save_model
from digitlab.nn.network import Network
from digitlab.nn.normalization import BatchNorm
from digitlab.presets import PRESETS
from digitlab.spec import Spec, make_spec

from .test_cli import assert_one_line_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def images(mnist) -> np.ndarray:
    return mnist.test.images[:1000]


def with_trained_statistics(network: Network, seed: int = 0) -> Network:
    """Give every batch-norm layer running statistics, scale and shift far from their
    initial 0, 1, 1, 0, so an export that ignored or mixed them up would show."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if isinstance(layer, BatchNorm):
            features = layer.running_mean.shape
            layer.running_mean[...] = rng.normal(0, 1, features)
            layer.running_var[...] = rng.uniform(0.2, 3, features)
            layer.scale.value[...] = rng.uniform(0.5, 2, features)
            layer.shift.value[...] = rng.normal(0, 0.5, features)
    return network


def untrained(spec: Spec, calibration: Calibration | None = None) -> Model:
    network = with_trained_statistics(build_network(spec, np.random.default_rng(1)))
    return Model(spec, network, TrainingMetrics(test_accuracy=0.1), calibration)


def calibration_at(temperature: float) -> Calibration:
    return Calibration(temperature, 0.8, (0.3, 0.2), (0.05, 0.01))


def onnx_probabilities(proto, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {onnx_export.INPUT_NAME: images})[0]


def assert_same_probabilities(model: Model, images: np.ndarray) -> np.ndarray:
    ours = model.probabilities(images)
    exported = onnx_probabilities(onnx_export.to_onnx(model), images)
    assert exported.dtype == np.float32 and exported.shape == ours.shape == (len(images), 10)
    assert np.abs(exported - ours).max() <= TOLERANCE
    return ours


@pytest.mark.parametrize(
    "fields",
    [
        {"layers": [784, 100, 30, 10], "activation": "sigmoid", "cost": "cross-entropy"},
        {"layers": [784, 100, 10], "activation": "relu", "cost": "log-likelihood",
         "batch_norm": True, "dropout": 0.5},
        {"layers": ["dense:100", "dropout:0.3", "dense:10"], "activation": "tanh",
         "cost": "log-likelihood"},
        {"layers": [784, 60, 10], "activation": "leaky-relu", "cost": "quadratic",
         "output_activation": "linear"},
    ],
    ids=["sigmoid-cross-entropy", "relu-batch-norm-dropout", "tanh-dropout-layer",
         "leaky-relu-quadratic-linear"],
)  # fmt: skip
def test_dense_networks_give_our_probabilities(fields, images) -> None:
    assert_same_probabilities(untrained(make_spec(fields)), images)


CONV_SPECS = {
    "cnn-best": PRESETS["cnn-best"].spec,
    "even-kernel-avg-pool-sigmoid": make_spec(
        {
            "layers": ["conv:6:4:same", "pool:2:avg", "conv:8:3", "pool:2", "dense:30", "dense:10"],
            "activation": "sigmoid",
            "cost": "cross-entropy",
            "batch_norm": True,
        }
    ),
}


@pytest.mark.parametrize("name", CONV_SPECS)
def test_convolutional_networks_give_our_probabilities(name, images) -> None:
    ours = assert_same_probabilities(untrained(CONV_SPECS[name]), images)
    assert ours.max(axis=1).mean() < 0.99  # not saturated: differences would show


@pytest.mark.parametrize("cost", ["log-likelihood", "cross-entropy"])
@pytest.mark.parametrize("temperature", [0.4, 2.5])
def test_calibrated_models_give_our_calibrated_probabilities(cost, temperature, images) -> None:
    spec = make_spec({"layers": [784, 50, 10], "cost": cost})
    calibrated = untrained(spec, calibration_at(temperature))
    ours = assert_same_probabilities(calibrated, images)
    uncalibrated = untrained(spec).probabilities(images)
    assert np.abs(ours - uncalibrated).max() > 0.01  # the temperature matters here


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_tiny_sigmoid_outputs_tempered_into_view_agree(cost, images) -> None:
    """Sigmoid outputs down at z = -20 (1e-9) are raised to 1e-5 and more by a
    temperature of 2 or 3: both sides must compute them to their relative precision (a
    sigmoid exact only to float32's absolute rounding gives 0 there)."""
    for temperature in (2.0, 3.0):
        model = untrained(make_spec({"layers": [784, 30, 10], "cost": cost}))
        model = replace(model, calibration=calibration_at(temperature))
        model.network.layers[-1].biases.value[...] = np.linspace(-20, 0, 10)
        ours = assert_same_probabilities(model, images)
        assert ours.min() > 1e-5  # the tiny outputs, raised into view


def test_rows_without_a_positive_output_get_uniform_probabilities_as_ours_do(images) -> None:
    spec = make_spec({"layers": [784, 60, 10], "cost": "quadratic", "output_activation": "relu"})
    model = untrained(spec)
    # lowered so that half the rows have no positive output
    top_logits = model.network.logits(images).max(axis=1)
    model.network.layers[-1].biases.value[...] -= np.median(top_logits)
    ours = assert_same_probabilities(model, images)
    uniform = (ours == np.float32(0.1)).all(axis=1).sum()
    assert 0 < uniform < len(images)


def test_the_file_carries_the_contract_and_the_models_record() -> None:
    spec = PRESETS["cnn-best"].spec
    model = untrained(spec, calibration_at(1.5))
    proto = onnx_export.to_onnx(model)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["name"] == proto.graph.name == "cnn-best"
    assert make_spec(json.loads(props["spec"])) == spec
    assert json.loads(props["metrics"]) == model.metrics.to_dict()
    assert json.loads(props["calibration"])["temperature"] == 1.5
    assert "unlike_above" not in json.loads(props["calibration"])
    assert "started_from" not in props and "trained_on" not in props  # MNIST, from scratch
    told = replace(model, trained_on="600 images given to DigitClassifier.fit")
    told_props = {p.key: p.value for p in onnx_export.to_onnx(told).metadata_props}
    assert told_props["trained_on"] == "600 images given to DigitClassifier.fit"
    assert proto.opset_import[0].version == onnx_export.OPSET
    (pixels,), (probabilities,) = proto.graph.input, proto.graph.output
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (pixels, probabilities)]  # fmt: skip
    assert dims == [["N", 784], ["N", 10]]


def test_a_layer_the_exporter_does_not_know_is_named() -> None:
    class Mystery(Layer):
        pass

    model = untrained(make_spec({"layers": [784, 30, 10]}))
    model.network.layers.insert(1, Mystery())
    with pytest.raises(DigitlabError, match="cannot export a Mystery layer to ONNX"):
        onnx_export.to_onnx(model)


def test_a_network_that_does_not_read_digits_is_refused() -> None:
    spec = make_spec({"layers": [784, 30, 5]})
    model = Model(spec, build_network(spec, np.random.default_rng(0)))
    with pytest.raises(SpecError, match="it needs 10"):
        onnx_export.to_onnx(model)


def test_without_onnx_installed_the_export_says_how_to_install_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(onnx_export, "onnx", None)
    model = untrained(make_spec({"layers": [784, 30, 10]}))
    with pytest.raises(DigitlabError, match=r"pip install 'digitlab\[onnx\]'"):
        onnx_export.export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "m.npz"
    spec = make_spec({"layers": [784, 30, 10], "cost": "log-likelihood"})
    save_model(path, untrained(spec, calibration_at(1.3)))
    return path


def test_the_export_command_writes_a_file_onnxruntime_runs(model_file, run_cli, images) -> None:
    out = model_file.parent / "exported" / "m.onnx"
    result = run_cli("export", model_file, out)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    exported = onnx_probabilities(onnx.load(out), images)
    ours = load_model(model_file).probabilities(images)
    assert np.abs(exported - ours).max() <= TOLERANCE


@pytest.mark.parametrize(
    ("model", "out", "fragment"),
    [
        ("m.npz", "m.txt", "does not end in .onnx"),
        ("m.npz", "m.npz/m.onnx", "it is a file, not a folder"),
        ("missing.npz", "m.onnx", "does not exist"),
        ("notes.npz", "m.onnx", "is not a digitlab model file"),
    ],
)
def test_the_export_command_refuses_bad_input_in_one_line(
    model_file, run_cli, model, out, fragment
) -> None:
    folder = model_file.parent
    (folder / "notes.npz").write_text("not a model")
    result = run_cli("export", folder / model, folder / out)
    assert_one_line_error(result, fragment)
    assert not list(folder.glob("*.onnx"))


def test_a_path_or_an_estimator_instead_of_a_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"not str: load it with load_model\(path\) first"):
        onnx_export.to_onnx("m.npz")
    model = untrained(make_spec({"layers": [784, 30, 10]}))
    with pytest.raises(TypeError, match="not PosixPath: the model comes first"):
        onnx_export.export_onnx(tmp_path / "m.onnx", model)
