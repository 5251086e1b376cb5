"""A spec cannot be changed in place, and every changed copy of it is validated."""

from __future__ import annotations

import pydantic
import pytest

from digitlab.errors import SpecError
from digitlab.presets import PRESETS, get, preset_of
from digitlab.spec import ConvPlan, Spec, make_spec


def test_assigning_to_a_field_is_refused() -> None:
    spec = Spec()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.epochs = 5
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        del spec.eta
    assert spec == Spec()


@pytest.mark.parametrize(
    "update, fragment",
    [
        ({"epochs": -5}, "epochs: input should be greater than or equal to 1"),
        ({"eta": 0}, "eta: input should be greater than 0"),
        ({"optimizer": "sgdd"}, "optimizer: "),
        ({"cost": "log-likelihood", "output_activation": "sigmoid"}, "needs softmax outputs"),
        ({"no_such_field": 1}, "no_such_field: unknown key"),
        ({"preset": "cnn-best"}, "presets.get('cnn-best').spec.with_overrides(...)"),
    ],
)
def test_an_invalid_update_is_one_spec_error(update, fragment) -> None:
    for copy in (lambda s: s.model_copy(update=update), lambda s: s.with_overrides(**update)):
        with pytest.raises(SpecError) as caught:
            copy(Spec())
        message = str(caught.value)
        assert fragment in message and "\n" not in message


def test_a_valid_update_makes_a_new_spec_and_leaves_the_old_one() -> None:
    spec = Spec()
    longer = spec.model_copy(update={"epochs": 60, "layers": ["conv:8:5", "pool:2", "dense:10"]})
    assert longer.epochs == 60 and longer.layer_plan()[0] == ConvPlan(8, 5, "valid")
    assert spec.epochs == 30 and spec.layers == [784, 30, 10]
    assert longer == spec.with_overrides(epochs=60, layers=["conv:8:5", "pool:2", "dense:10"])


def test_copies_compare_and_hash_as_before() -> None:
    spec = PRESETS["book-ch6-conv2"].spec
    for copy in (spec.model_copy(), spec.model_copy(deep=True), spec.model_copy(update={})):
        assert copy == spec and copy is not spec
    assert spec.model_copy(update={"seed": 4}) != spec
    assert preset_of(spec.model_copy(update={"seed": 4})) == "book-ch6-conv2"
    with pytest.raises(TypeError, match="unhashable"):  # layers is a list, as it always was
        hash(spec)


def test_a_preset_key_in_python_says_how_to_start_from_a_preset() -> None:
    """Spec files and studies take ``preset = ...``; a Python dict with one is told the
    Python way, and the way it names works."""
    with pytest.raises(SpecError, match=r"^spec: preset: not a spec field; .*get\('cnn-best'\)"):
        make_spec({"preset": "cnn-best", "eta": 0.1})
    started = get("cnn-best").spec.with_overrides(eta=0.1)
    assert started.eta == 0.1 and started.layers == PRESETS["cnn-best"].spec.layers


def test_a_spec_built_directly_raises_pydantic_s_error_and_make_spec_one_line() -> None:
    """``Spec(...)`` is a pydantic model and says what pydantic says; make_spec, which
    every file, flag and study goes through, says it in one line, naming its source."""
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        Spec(eta=-1)
    with pytest.raises(SpecError) as caught:
        make_spec({"eta": -1}, source="mine")
    assert str(caught.value) == "mine: eta: input should be greater than 0"
    assert isinstance(caught.value, ValueError)  # as pydantic's own error is
    assert Spec(eta=0.1) == make_spec({"eta": 0.1})
