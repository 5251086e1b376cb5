"""Study files: a base spec, a search space over its fields, and a budget.

A study asks one question ("how many hidden neurons?") by training many variations of
one base spec.  Its TOML file says what varies and how it is searched::

    name = "hidden-units"
    question = "How many hidden neurons does a [784,n,10] network need?"

    [base]                      # a spec: optionally a preset, then fields
    preset = "book-ch3-l2"

    [space]                     # hyperparameter -> list of values, or a range
    hidden_units = [10, 30, 100, 300, 1000]
    eta = { low = 0.01, high = 10.0, log = true }

    [search]
    sampler = "grid"            # grid, random or tpe
    repeats = 3                 # runs (seeds) per configuration
    pruner = "none"             # or "median": stop trials behind the median early

    [quick]                     # overrides for `--quick`: a first look in minutes
    train_size = 5000
    epochs = 5

Besides any spec field, the space may vary ``hidden_units`` and ``hidden_layers`` (the
network becomes [784, units x layers, 10]), ``layers`` as text ("784,100,10") and
``regularization`` as text ("none", "l2:5", "l1:2", "dropout:0.5").

An ablation asks which parts of a recipe matter.  Its study file names variants of the
base instead of (or besides) a space, each a set of fields to change; the first is the
reference every other variant is compared with::

    [base]
    preset = "cnn-record"

    [variants]
    "the recipe" = {}
    "no moving average" = { ema = 0 }
    "cnn-best's warps" = { rotation = 0, translation = 0, augment = "affine" }

The variants become one more hyperparameter, ``variant``, searched like any list.

A grid study may name a *baseline* too, a configuration of its grid that every other is
measured from (the book's choice, or no regularisation at all), so that the report says
what each choice buys over it, not only which is best::

    baseline = { regularization = "none" }
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from digitlab.errors import SpecError
from digitlab.presets import get as get_preset
from digitlab.spec import (
    Spec,
    describe_validation_error,
    make_spec,
    overridden,
    parse_layers,
    read_toml,
)

Scalar = bool | int | float | str
DERIVED = {"hidden_units", "hidden_layers", "layers", "regularization"}
#: The hyperparameter a study file's [variants] become.
VARIANT = "variant"
#: Fields a derived hyperparameter sets besides its own name.
OVERLAPPING = {
    "hidden_units": ("layers", "hidden_layers"),
    "hidden_layers": ("layers", "hidden_units"),
    "layers": ("hidden_units", "hidden_layers"),
    "regularization": ("lmbda", "l1", "dropout"),
    "lmbda": ("regularization",),
    "l1": ("regularization",),
    "dropout": ("regularization",),
}
#: How trials record their runs (2: numeric distributions, runs as system attributes).
STORAGE_FORMAT = 2
REGULARIZERS = {"none": {}, "l2": "lmbda", "l1": "l1", "dropout": "dropout"}


class Range(BaseModel):
    """A numeric range to sample from (random and TPE samplers only)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    low: float
    high: float
    log: bool = False
    int: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class Search(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sampler: Literal["grid", "random", "tpe"] = "grid"
    trials: int | None = Field(None, ge=1, description="random/tpe: configurations to try")
    repeats: int = Field(1, ge=1, description="runs per configuration, seeds 0..repeats-1")
    seed: int = 0
    pruner: Literal["none", "median"] = "none"
    prune_warmup: int = Field(3, ge=0, description="epochs before a trial may be pruned")
    metric: Literal["validation_accuracy"] = "validation_accuracy"


class Quick(BaseModel):
    """What ``--quick`` changes: less data, fewer epochs, trials and repeats."""

    model_config = ConfigDict(extra="forbid")
    train_size: int = Field(5000, ge=1)
    epochs: int = Field(3, ge=1)
    trials: int | None = Field(None, ge=1)
    repeats: int = Field(1, ge=1)


class StudyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    question: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, list[Scalar] | Range] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    baseline: dict[str, Scalar] = Field(default_factory=dict)
    search: Search = Field(default_factory=Search)
    quick: Quick = Field(default_factory=Quick)

    @field_validator("space", mode="before")
    @classmethod
    def _ranges_from_tables(cls, space: Any) -> Any:
        """A TOML table is a range, anything else a list of values: say which went wrong."""
        if not isinstance(space, dict):
            return space
        parsed = {}
        for key, entry in space.items():
            if isinstance(entry, dict):
                try:
                    entry = Range.model_validate(entry)
                except ValidationError as exc:
                    raise ValueError(f"space.{key}: {describe_validation_error(exc)}") from None
            elif not isinstance(entry, list):
                raise ValueError(f"space.{key}: give a list of values or a {{low, high}} range")
            parsed[key] = entry
        return parsed

    @model_validator(mode="after")
    def _consistent(self) -> StudyFile:
        if not self.space and not self.variants:
            raise ValueError("space: name at least one hyperparameter to vary, or [variants]")
        self._check_variants()
        self._check_baseline()
        for key, values in self.space.items():
            if key == VARIANT and self.variants:
                continue  # checked with the variants
            if key not in DERIVED and key not in Spec.model_fields:
                raise ValueError(f"space.{key}: unknown hyperparameter")
            if isinstance(values, list) and not values:
                raise ValueError(f"space.{key}: give at least one value")
            if isinstance(values, Range) and self.search.sampler == "grid":
                raise ValueError(f"space.{key}: a grid needs a list of values, not a range")
        if self.search.sampler != "grid" and self.search.trials is None:
            raise ValueError("search.trials: the random and tpe samplers need a number of trials")
        if self.variants:
            self.space = {VARIANT: list(self.variants), **self.space}
        return self

    def _check_variants(self) -> None:
        """Variants that each change something of their own, on a grid, and nothing the
        space also sets (the space's value would silently win)."""
        if not self.variants:
            return
        if len(self.variants) < 2:
            raise ValueError("variants: name a reference and at least one variant of it")
        if self.search.sampler != "grid":
            raise ValueError("variants: an ablation needs the grid sampler (every variant runs)")
        if VARIANT in self.space and self.space[VARIANT] != list(self.variants):
            raise ValueError("space.variant: the variants are named in [variants] only")
        searched = {
            related
            for key in self.space
            if key != VARIANT
            for related in (key, *OVERLAPPING.get(key, ()))
        }
        seen: dict[str, str] = {}
        for name, fields in self.variants.items():
            if not name.strip() or "|" in name or "\n" in name:
                raise ValueError(f"variants: {name!r} is no name for a table's row")
            for key in fields:
                if key not in DERIVED and key not in Spec.model_fields:
                    raise ValueError(f"variants.{name}.{key}: unknown hyperparameter")
                if key in searched:
                    raise ValueError(f"variants.{name}.{key}: also searched in [space]")
            same = seen.setdefault(json.dumps(fields, sort_keys=True), name)
            if same != name:
                raise ValueError(f"variants.{name}: changes exactly what {same} changes")

    def _check_baseline(self) -> None:
        """A baseline is one configuration of a grid: a listed value for every key of the
        space (an ablation's reference is its first variant instead)."""
        if not self.baseline:
            return
        if self.variants:
            raise ValueError("baseline: an ablation is measured from its first variant")
        if self.search.sampler != "grid":
            raise ValueError("baseline: only a grid runs every configuration, the baseline too")
        if set(self.baseline) != set(self.space):
            raise ValueError(
                f"baseline: give a value for each of {', '.join(self.space)}, and nothing else"
            )
        for key, value in self.baseline.items():
            values = self.space[key]
            if isinstance(values, list) and value not in values:
                raise ValueError(f"baseline.{key}: {value!r} is not among the values searched")

    def varied_fields(self) -> set[str]:
        """Every field a trial may set: the space's keys and the variants' fields."""
        return set(self.space) | {key for fields in self.variants.values() for key in fields}

    @property
    def reference(self) -> str | None:
        """The variant every other is compared with (the first), if the study has any."""
        return next(iter(self.variants), None)

    def space_fingerprint(self) -> str:
        """A canonical text of what is searched and how it is stored, to tell studies
        apart in storage (a study stored by an older digitlab is refused, not misread)."""
        space = {k: v if isinstance(v, list) else v.model_dump() for k, v in self.space.items()}
        return json.dumps(
            {
                "base": self.base,
                "space": space,
                **({"variants": self.variants} if self.variants else {}),
                "sampler": self.search.sampler,
                "storage_format": STORAGE_FORMAT,
            },
            sort_keys=True,
        )


def numeric(values: list[Any]) -> bool:
    """Whether a list of values holds numbers only (booleans are not numbers here)."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def load_study_file(path: Path) -> StudyFile:
    """Read and validate a study file; errors are one line naming the file and key."""
    raw = read_toml(path, "study file")
    try:
        study = StudyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(p for p in first["loc"] if isinstance(p, str) and "[" not in p)
        reason = describe_validation_error(exc)
        if first["type"] != "value_error" and loc and not reason.startswith(loc):
            reason = f"{loc}: {reason.split(': ', 1)[-1]}"
        raise SpecError(f"{path}: {reason}") from None
    base = base_spec(study, source=str(path))  # the base must be a valid spec on its own
    for name in study.variants:  # as strictly as a spec file: a variant is one
        apply_params(
            base, {VARIANT: name}, {}, study.variants, f"{path}: variant {name}", strict=True
        )
    for params in points_to_check(study, path):  # as the trials will apply them
        named = ", ".join(
            f"variant {value}" if key == VARIANT else f"space.{key} = {value!r}"
            for key, value in params.items()
        )
        apply_params(base, params, {}, study.variants, f"{path}: {named}")
    return study


def grid_points(study: StudyFile) -> list[dict[str, Any]]:
    """Every configuration of a grid study (whose space holds lists only), in order."""
    keys = list(study.space)
    return [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*study.space.values())
    ]


#: The most configurations a grid may have: far more than two cores could train, and
#: few enough to check every one when the file is read.
MAX_GRID_POINTS = 10_000


def points_to_check(study: StudyFile, path: Path) -> list[dict[str, Any]]:
    """The configurations that show, before anything runs, whether every trial will be a
    valid spec: each point of a grid, else each listed value and each end of a range on
    its own (whole-number ranges cut to whole numbers as trials draw them), the other
    hyperparameters at the base's."""
    if study.search.sampler == "grid":
        count = math.prod(len(values) for values in study.space.values())
        if count > MAX_GRID_POINTS:
            raise SpecError(
                f"{path}: the grid has {count:,} configurations, more than "
                f'{MAX_GRID_POINTS:,}; search it with sampler = "random" or "tpe" instead'
            )
        return grid_points(study)
    points = []
    for key, values in study.space.items():
        if isinstance(values, Range):
            ends = [values.low, values.high]
            values = [int(end) for end in ends] if values.int else ends
        points += [{key: value} for value in values]
    return points


def base_spec(study: StudyFile, source: str = "base") -> Spec:
    fields = dict(study.base)
    preset = fields.pop("preset", None)
    start = get_preset(preset).spec.model_dump() if preset else {}
    return make_spec(overridden(start, fields), source=f"{source}: base", strict=True)


def apply_params(
    base: Spec,
    params: dict[str, Any],
    overrides: dict[str, Any],
    variants: dict[str, dict[str, Any]] | None = None,
    source: str = "trial",
    strict: bool = False,
) -> Spec:
    """The spec for one trial: the base, the sampled hyperparameters (a ``variant`` stands
    for its fields in ``variants``), then ``overrides``; ``strict`` as for a spec file,
    which is how a study file's variants are checked when it is read."""
    fields = base.model_dump()
    if VARIANT in params:
        params = {**(variants or {})[params[VARIANT]], **params}
        del params[VARIANT]
    try:
        fields = overridden(fields, derived_fields(fields["layers"], params))
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None
    return make_spec(overridden(fields, overrides), source=source, strict=strict)


def derived_fields(layers: list[Any], params: dict[str, Any]) -> dict[str, Any]:
    """The spec fields ``params`` set: each spec field as it is, and the derived
    hyperparameters (hidden units and layers, layers as text, regularization) as the
    fields they stand for.  ``layers`` is the base's, which hidden units resize."""
    fields: dict[str, Any] = {}
    units, depth = params.get("hidden_units"), params.get("hidden_layers")
    if units is not None or depth is not None:
        hidden = layers[1:-1] or [30]
        try:
            units = int(units if units is not None else hidden[0])
            depth = int(depth if depth is not None else len(hidden))
        except (TypeError, ValueError):
            raise SpecError("hidden_units and hidden_layers must be whole numbers") from None
        fields["layers"] = [layers[0], *[units] * depth, layers[-1]]
    for key, value in params.items():
        if key in ("hidden_units", "hidden_layers"):
            continue
        if key == "layers":
            fields["layers"] = value if isinstance(value, list) else parse_layers(str(value))
        elif key == "regularization":
            fields.update(parse_regularization(str(value)))
        else:
            fields[key] = value
    return fields


def parse_regularization(text: str) -> dict[str, float]:
    """'none' | 'l2:5' | 'l1:2' | 'dropout:0.5' -> spec fields (the others switched off)."""
    kind, _, amount = text.partition(":")
    fields = {"lmbda": 0.0, "l1": 0.0, "dropout": 0.0}
    if kind == "none" and not amount:
        return fields
    if kind not in ("l2", "l1", "dropout") or not amount:
        raise SpecError(f"regularization: {text!r} is not none, l2:X, l1:X or dropout:X")
    try:
        fields[REGULARIZERS[kind]] = float(amount)
    except ValueError:
        raise SpecError(f"regularization: {text!r} needs a number after the colon") from None
    return fields
