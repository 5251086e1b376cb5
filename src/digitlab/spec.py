"""The network spec: one validated, serialisable description of a training run.

A spec says everything needed to build and train a network -- layer sizes,
activations, cost, initialisation, optimiser, regularisation, learning-rate schedule,
augmentation, label smoothing, weight averaging, epochs, mini-batch size and seed.  The
CLI builds one from flags, a TOML file or a preset; a saved model records the one it was
trained with; a study varies its fields.

This module depends on nothing else in digitlab, so every part may use it.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from digitlab.errors import SpecError

HiddenActivation = Literal["sigmoid", "tanh", "relu", "leaky-relu"]
OutputActivation = Literal["sigmoid", "softmax", "tanh", "relu", "leaky-relu", "linear"]
CostName = Literal["quadratic", "cross-entropy", "log-likelihood"]
InitName = Literal["large", "normal", "glorot", "he"]
OptimizerName = Literal["sgd", "momentum", "adam"]
ScheduleName = Literal["constant", "step", "plateau", "cosine", "warmup-cosine"]
AugmentName = Literal["none", "affine", "elastic", "robust"]

PositiveInt = Annotated[int, Field(ge=1)]

#: Every network sees MNIST-shaped images: 1 channel of 28 x 28 pixels (784 as a row).
INPUT_SHAPE = (1, 28, 28)
#: What every digitlab network reads and answers: a 28x28 image's pixels, ten digits.
PIXELS = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]
#: One image as a 2-D array: (height, width), MNIST's 28 x 28.
IMAGE_SHAPE = INPUT_SHAPE[1:]
DIGITS = 10
#: The learning rate Adam takes when a spec names none: its paper's, PyTorch's and
#: Keras's default.  Adam's steps are about eta per weight whatever the gradient's size,
#: so SGD's default of 0.5 throws a network to chance.
ADAM_ETA = 0.001
#: The momentum coefficient's default, which only optimizer = "momentum" uses.
MOMENTUM = 0.9
#: The fields that only some learning-rate schedules read, and which.
SCHEDULE_FIELDS = {
    "step_size": ("step",),
    "gamma": ("step", "plateau"),
    "patience": ("plateau",),
    "min_eta_ratio": ("plateau", "warmup-cosine"),
    "warmup_epochs": ("warmup-cosine",),
}
LAYER_SYNTAX = "conv:FILTERS:KERNEL[:same], pool:SIZE[:avg], dense:UNITS or dropout:P"


@dataclass(frozen=True)
class DensePlan:
    """A fully-connected layer of ``units`` neurons (``dense:100``)."""

    units: int


@dataclass(frozen=True)
class ConvPlan:
    """``filters`` convolutions of ``kernel`` x ``kernel`` pixels (``conv:20:5[:same]``)."""

    filters: int
    kernel: int
    padding: Literal["valid", "same"] = "valid"


@dataclass(frozen=True)
class PoolPlan:
    """Pooling over ``size`` x ``size`` blocks, by maximum or average (``pool:2[:avg]``)."""

    size: int
    mode: Literal["max", "avg"] = "max"


@dataclass(frozen=True)
class DropoutPlan:
    """Dropout of a share ``p`` of the previous layer's outputs (``dropout:0.5``)."""

    p: float


#: One layer of a network as the spec plans it (what :meth:`Spec.layer_plan` lists).
LayerPlan = DensePlan | ConvPlan | PoolPlan | DropoutPlan


def parse_layer(text: str) -> LayerPlan:
    """``"conv:20:5"`` -> ``ConvPlan(20, 5, "valid")``, and likewise for the other kinds."""
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
        raise ValueError(
            f"layers: {text!r} is a bare number among layer texts: write every layer as a "
            "text (conv:20:5,pool:2,dense:100,dense:10; the 784 inputs are implied), or "
            "every one as a number (784,30,10)"
        )
    if not isinstance(text, str):
        raise ValueError(f"layers: {text!r} is not one of {LAYER_SYNTAX}")
    kind, *args = text.strip().split(":")
    if kind == "dropout" and len(args) == 1:
        try:
            share = float(args[0])
        except ValueError:
            share = math.nan
        if 0 <= share < 1:
            return DropoutPlan(share)
        raise ValueError(f"layers: {text!r}: dropout's share must be a number from 0 to below 1")
    try:
        if kind == "conv" and len(args) in (2, 3) and args[2:] in ([], ["same"], ["valid"]):
            filters, kernel = int(args[0]), int(args[1])
            if filters >= 1 and kernel >= 1:
                return ConvPlan(filters, kernel, args[2] if len(args) == 3 else "valid")
        elif kind == "pool" and len(args) in (1, 2) and args[1:] in ([], ["max"], ["avg"]):
            if int(args[0]) >= 1:
                return PoolPlan(int(args[0]), args[1] if len(args) == 2 else "max")
        elif kind == "dense" and len(args) == 1 and int(args[0]) >= 1:
            return DensePlan(int(args[0]))
    except ValueError:
        pass
    raise ValueError(f"layers: {text!r} is not one of {LAYER_SYNTAX}")


def check_layer_texts(texts: list[str]) -> list[str]:
    plan = [parse_layer(text) for text in texts]
    dense_seen = False
    for layer, text in zip(plan, texts, strict=True):
        dense_seen |= isinstance(layer, DensePlan)
        if dense_seen and isinstance(layer, ConvPlan | PoolPlan):
            raise ValueError(
                f"layers: {text!r} comes after a dense layer; images end at the first dense"
            )
    if not isinstance(plan[-1], DensePlan):
        raise ValueError("layers: the last layer must be dense (the output neurons)")
    return texts


# Checked by Spec._layer_texts_explain_themselves, which sees every list holding layer texts.
LayerTexts = Annotated[list[str], Field(min_length=1)]

#: The output activation each cost needs for its simple output error ``a - y``.
REQUIRED_OUTPUT = {"cross-entropy": "sigmoid", "log-likelihood": "softmax"}


class Spec(BaseModel):
    """A complete, validated description of one network and how to train it.

    A spec is frozen, so it stays as valid as it was made: assigning to a field raises
    (the ``layers`` list is a plain list, which is not guarded against changes in place).
    A spec that differs in some fields is a new one, made by
    ``spec.with_overrides(epochs=60)`` or ``spec.model_copy(update={"epochs": 60})``;
    both validate the result as a new spec is validated and raise a one-line
    :class:`~digitlab.errors.SpecError` for a bad value (pydantic's own ``model_copy``
    would take it unchecked).  Specs are equal when all their fields are; they are not
    hashable (``layers`` is a list).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    layers: Annotated[list[PositiveInt], Field(min_length=2)] | LayerTexts = Field(
        default=[784, 30, 10],
        description="Neurons per layer, input first (784,30,10), or layer texts: " + LAYER_SYNTAX,
    )
    activation: HiddenActivation = Field("sigmoid", description="Hidden-layer activation.")
    output_activation: OutputActivation | None = Field(
        None, description="Output activation; by default the one the cost needs (sigmoid/softmax)."
    )
    cost: CostName = "cross-entropy"
    init: InitName = Field(
        "normal",
        description="large: N(0,1) (book ch1); normal: N(0,1/n_in) (book ch3); glorot; he.",
    )
    optimizer: OptimizerName = "sgd"
    eta: float = Field(
        0.5, gt=0, description=f"Learning rate (when not given: {ADAM_ETA} for Adam)."
    )
    momentum: float = Field(
        MOMENTUM, ge=0, lt=1, description="Momentum coefficient (optimizer momentum only)."
    )
    lmbda: float = Field(0.0, ge=0, description="L2 strength with the book's lambda/n scaling.")
    l1: float = Field(0.0, ge=0, description="L1 strength with the book's lambda/n scaling.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Drop probability of hidden neurons.")
    batch_norm: bool = Field(
        False, description="Batch-normalise every convolution and hidden dense layer."
    )
    schedule: ScheduleName = "constant"
    step_size: PositiveInt = Field(10, description="step: epochs between learning-rate cuts.")
    gamma: float = Field(0.5, gt=0, lt=1, description="step/plateau: factor applied to eta.")
    patience: PositiveInt = Field(10, description="plateau: epochs without improvement.")
    min_eta_ratio: float = Field(
        1 / 128,
        gt=0,
        lt=1,
        description="plateau: stop once eta falls to eta0 times this; "
        "warmup-cosine: the last epoch's eta is eta0 times this.",
    )
    warmup_epochs: int = Field(
        2,
        ge=0,
        description="warmup-cosine: epochs whose eta rises linearly to its peak (at most "
        "all epochs but the last).",
    )
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 10
    early_stop: PositiveInt | None = Field(
        None, description="Stop after this many epochs without a better validation accuracy."
    )
    train_size: PositiveInt | None = Field(None, description="Use the first N training images.")
    expand: bool = Field(
        False, description="Add every training image shifted 1 pixel up/down/left/right (x5)."
    )
    augment: AugmentName = Field(
        "none",
        description="Warp the training images anew each epoch: affine, elastic, or robust "
        "(wider warps plus other pens, blur, noise and contrast, for people's own digits).",
    )
    outliers: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Add this many generated non-digit images per training image to every "
        "epoch, trained towards equal probabilities, so low confidence means 'not a digit'.",
    )
    rotation: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Turn each training image anew each epoch by a random angle of up to "
        "this many degrees either way (after the named augmentation, if any).",
    )
    zoom: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Scale each training image anew each epoch by a random factor "
        "between 1 - zoom and 1 + zoom.",
    )
    translation: float = Field(
        0.0,
        ge=0,
        le=14,
        description="Shift each training image anew each epoch by up to this many pixels "
        "across and up or down.",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Train towards (1 - e) y + e / 10 instead of the one-hot y "
        "(softmax + log-likelihood only); measured costs stay against y.",
    )
    ema: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Keep an exponential moving average of the weights with this decay "
        "(e.g. 0.999; 0: off); it is what is measured each epoch and saved.",
    )
    seed: int = Field(0, ge=0, description="Seed of every random choice in the run.")

    @field_validator("layers", mode="before")
    @classmethod
    def _layer_texts_explain_themselves(cls, layers: Any) -> Any:
        """Layer texts get their own error messages, not the integer list's."""
        if isinstance(layers, list) and any(
            isinstance(item, str) and not item.strip().isdigit() for item in layers
        ):
            check_layer_texts(layers)
        return layers

    @model_validator(mode="before")
    @classmethod
    def _adam_takes_its_own_learning_rate(cls, data: Any) -> Any:
        """A spec that asks for Adam and names no learning rate gets :data:`ADAM_ETA`."""
        if isinstance(data, dict) and data.get("optimizer") == "adam" and "eta" not in data:
            return {**data, "eta": ADAM_ETA}
        return data

    @model_validator(mode="after")
    def _say_what_does_nothing(self) -> Spec:
        """Warn of a field set to something that this spec's other fields make unused,
        so a setting is never silently ignored.  (A warning, not an error: a model saved
        with such a spec still loads.)"""
        if self.momentum != MOMENTUM and self.optimizer != "momentum":
            warnings.warn(
                f"momentum: only optimizer 'momentum' uses it; with {self.optimizer!r} "
                f"{self.momentum} has no effect",
                UserWarning,
                stacklevel=1,  # one place: each is shown once, however the spec is made
            )
        for name, schedules in SCHEDULE_FIELDS.items():
            value = getattr(self, name)
            if self.schedule not in schedules and value != type(self).model_fields[name].default:
                warnings.warn(
                    f"{name}: only the {' and '.join(schedules)} schedule(s) use it; with "
                    f"{self.schedule!r} {value} has no effect",
                    UserWarning,
                    stacklevel=1,  # one place: each is shown once, however the spec is made
                )
        plan = self.layer_plan()
        dense = [layer for layer in plan if isinstance(layer, DensePlan)]
        hidden = len(dense) > 1
        if self.dropout and not hidden:
            warnings.warn(
                f"dropout: it drops hidden dense layers' outputs and this network has none, "
                f"so {self.dropout} has no effect; a 'dropout:P' layer drops where it stands",
                UserWarning,
                stacklevel=1,  # one place: each is shown once, however the spec is made
            )
        if self.batch_norm and not hidden and not any(isinstance(x, ConvPlan) for x in plan):
            warnings.warn(
                "batch_norm: it normalises convolutions and hidden dense layers, and this "
                "network has neither, so it has no effect",
                UserWarning,
                stacklevel=1,  # one place: each is shown once, however the spec is made
            )
        return self

    @model_validator(mode="after")
    def _output_fits_cost(self) -> Spec:
        needed = REQUIRED_OUTPUT.get(self.cost)
        if needed and self.output_activation not in (None, needed):
            raise ValueError(
                f"output_activation: the {self.cost} cost needs {needed} outputs, "
                f"not {self.output_activation}"
            )
        return self

    @model_validator(mode="after")
    def _label_smoothing_fits_cost(self) -> Spec:
        if self.label_smoothing and self.cost != "log-likelihood":
            raise ValueError(
                "label_smoothing: needs the log-likelihood cost (softmax outputs, whose "
                f"targets may be any distribution), not {self.cost}"
            )
        return self

    @property
    def warps(self) -> bool:
        """Whether training images get a random rotation, zoom or shift each epoch."""
        return bool(self.rotation or self.zoom or self.translation)

    def layer_plan(self) -> list[LayerPlan]:
        """The layers after the input, e.g. ``[DensePlan(30), DensePlan(10)]``."""
        if all(isinstance(size, int) for size in self.layers):
            return [DensePlan(size) for size in self.layers[1:]]
        return [parse_layer(text) for text in self.layers]

    @property
    def input_size(self) -> int:
        """Pixels per image the network expects."""
        if all(isinstance(size, int) for size in self.layers):
            return self.layers[0]
        return INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]

    @property
    def output_size(self) -> int:
        """Neurons in the output layer (the last dense layer)."""
        return [layer for layer in self.layer_plan() if isinstance(layer, DensePlan)][-1].units

    @property
    def resolved_output_activation(self) -> str:
        """The output activation actually used (the cost's own when not given)."""
        return self.output_activation or REQUIRED_OUTPUT.get(self.cost, "sigmoid")

    def with_overrides(self, **changes: Any) -> Spec:
        """A new spec with some fields replaced, validated like any other (a new
        optimizer without an ``eta`` takes its own default: see :func:`overridden`)."""
        return make_spec(overridden(self.model_dump(), changes))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Spec:
        """A copy, with the fields in ``update`` replaced and the result validated as
        :meth:`with_overrides` validates it."""
        if update:
            return self.with_overrides(**update)
        return super().model_copy(deep=deep)


def check_digit_network(spec: Spec) -> None:
    """Refuse a network that cannot read MNIST digits: it must take the 784 pixels of a
    28x28 image and end in 10 outputs, one per digit (SpecError otherwise)."""
    if spec.input_size != PIXELS:
        raise SpecError(
            f"layers: the first layer has {spec.input_size} neurons; it needs {PIXELS}, "
            "one per pixel"
        )
    if spec.output_size != DIGITS:
        raise SpecError(
            f"layers: the last layer has {spec.output_size} neurons; it needs {DIGITS}, "
            "one per digit"
        )


def spec_to_argv(spec: Spec) -> list[str]:
    """The ``digitlab train`` flags that rebuild ``spec``: every field that differs from
    its default (the seed always), booleans as bare switches, lists comma-joined and
    floats written out in full, so reading the flags back gives the same spec."""
    defaults = Spec().model_dump()
    defaults["eta"] = Spec(optimizer=spec.optimizer).eta  # Adam's default rate is its own
    argv = []
    for key, value in spec.model_dump().items():
        if key != "seed" and value == defaults[key]:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif isinstance(value, list):
            argv += [flag, ",".join(map(str, value))]
        elif value is not None:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def overridden(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``base`` with ``changes`` on top.  A change to or from Adam that
    names no ``eta`` drops the base's learning rate, so the new optimizer starts from its
    own default: Adam's 0.001 and SGD's 0.5 are five hundred times apart, and either
    one's rate throws the other's network to chance.  Between plain SGD and momentum the
    rate is kept: it is the same kind of step."""
    merged = {**base, **changes}
    before = base.get("optimizer", "sgd") == "adam"
    after = changes.get("optimizer", base.get("optimizer", "sgd")) == "adam"
    if "eta" not in changes and before != after:
        merged.pop("eta", None)
    return merged


def make_spec(
    fields: dict[str, Any], source: str = "spec", as_flags: bool = False, strict: bool = False
) -> Spec:
    """Validate ``fields`` into a :class:`Spec`, or raise a one-line :class:`SpecError`.

    The error names ``source`` and the offending key (as a ``--flag`` if ``as_flags``).
    ``strict`` takes each value only as its own type, as a typed file (TOML) should give
    it: ``eta = true`` or ``eta = "0.5"`` is refused rather than read as 1.0 or 0.5, and
    so is ``epochs = 30.0`` where a whole number is wanted (a whole number still counts
    where any number is).  A ``preset`` key, as spec files and studies have, is not a
    field: the error shows how to start from one in Python.
    """
    if isinstance(fields, dict) and "preset" in fields:
        where = f"{source}: " if source else ""
        raise SpecError(
            f"{where}preset: not a spec field; start from a preset with "
            f"digitlab.presets.get({fields['preset']!r}).spec.with_overrides(...)"
        )
    try:
        return Spec.model_validate(fields, strict=strict)
    except ValidationError as exc:
        reason = describe_validation_error(exc, as_flags)
        raise SpecError(f"{source}: {reason}" if source else reason) from None


def describe_validation_error(exc: ValidationError, as_flags: bool = False) -> str:
    """Turn pydantic's multi-line report into one sentence naming the first bad key."""
    first = exc.errors()[0]
    message = first["msg"]
    if first["type"] == "value_error":  # our own validators say "key: reason" themselves
        key, colon, message = message.removeprefix("Value error, ").partition(": ")
        if not colon:  # a reason with no key to name
            key, message = "", key
    else:
        key = str(first["loc"][0]) if first["loc"] else ""
        message = "unknown key" if first["type"] == "extra_forbidden" else message
        message = message[0].lower() + message[1:]
        if first["type"].endswith("_type"):  # a value of the wrong type: show which
            value = first["input"]
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            message += f", not {shown}"
    if as_flags and key:
        key = "--" + key.replace("_", "-")
    return f"{key}: {message}" if key else message


def read_spec_file(path: Path) -> dict[str, Any]:
    """Read a TOML spec file into a dict (not yet validated); a study file given in its
    place is named as one, with the command that runs it."""
    fields = read_toml(path, "spec file")
    study_tables = [key for key in ("space", "variants", "search") if key in fields]
    if study_tables:
        raise SpecError(
            f"{path} is a study file (it has [{study_tables[0]}]), not a spec: run it with "
            f"`digitlab study run {path}`"
        )
    return fields


#: TOML files larger than this are not specs or studies (the shipped ones are < 2 KB).
MAX_TOML_BYTES = 1_000_000


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Read the TOML file ``path`` (``what``: "spec file", "study file"), or raise a
    one-line SpecError saying why it cannot be: missing, a folder, unreadable, too
    large, not UTF-8, not TOML, or nested too deeply to parse."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SpecError(f"{what} {path} is a folder, not a TOML file")
        if path.exists() and not path.is_file():
            raise SpecError(f"{what} {path} is not a regular file")
        if path.stat().st_size > MAX_TOML_BYTES:
            raise SpecError(f"{what} {path} is over {MAX_TOML_BYTES:,} bytes: not a {what}")
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        # Windows' Notepad starts UTF-8 files with a byte-order mark, which TOML forbids
        return tomllib.loads(text.removeprefix("\ufeff"))
    except FileNotFoundError:
        raise SpecError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise SpecError(f"{what} {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{what} {path} is nested too deeply to read") from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror}") from None


def parse_layers(text: str, name: str = "layers") -> list[int] | list[str]:
    """``784,30,10`` (neurons per layer) or layer texts like ``conv:20:5,pool:2,dense:10``,
    as the ``--layers`` flag and study files write them; ``name`` is what an error names."""
    parts = [part.strip() for part in text.split(",")]
    if all(part.isdigit() for part in parts):
        return [int(part) for part in parts]
    if any(":" in part for part in parts):
        return parts  # layer texts: the spec explains any mistake in them
    raise SpecError(
        f"{name}: {text!r} must be comma-separated whole numbers (784,30,10) "
        "or layers (conv:20:5,pool:2,dense:100,dense:10)"
    )
