"""DigitClassifier: digitlab as a scikit-learn estimator, on small MNIST subsets (a
784-30-10 network, three epochs)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from digitlab.errors import ArrayError, SpecError
from digitlab.inputs import pixel_rows
from digitlab.interop.sklearn import VALIDATION_FRACTION, DigitClassifier
from digitlab.nn.model_file import save_model
from digitlab.spec import Spec
from digitlab.train import Trainer

#: Why scikit-learn's generic checks that fail here do.  Nearly all fit arrays a few
#: columns wide, while a digitlab network reads the 784 pixels of a 28x28 image: the
#: trainer and model files refuse other widths, and the pixel checks refuse what is not
#: 0-255 or 0-1 grey levels.  (Setting the first layer from ``n_features_in_`` would not
#: help: the trainer accepts only 784-pixel, 10-digit networks.)  The properties these
#: checks stand for that matter to a user -- fit returns self, pickling, idempotent fits,
#: any labels, read-only and list input, a column of labels -- are tested on MNIST below.
WIDTH = "fits data a few columns wide; digitlab networks read 784 pixels"
EXPECTED_FAILURES = {
    "check_classifier_data_not_an_array": WIDTH,
    "check_classifiers_classes": WIDTH,
    "check_classifiers_one_label": WIDTH,
    "check_classifiers_train": WIDTH,
    "check_dict_unchanged": WIDTH,
    "check_dont_overwrite_parameters": WIDTH,
    "check_dtype_object": "object arrays are refused: pixels must have a numeric type",
    "check_estimators_dtypes": WIDTH,
    "check_estimators_empty_data_messages": (
        "wants scikit-learn's wording for 0 columns; ours says the array is empty"
    ),
    "check_estimators_fit_returns_self": WIDTH,
    "check_estimators_nan_inf": WIDTH,
    "check_estimators_overwrite_params": WIDTH,
    "check_estimators_pickle": WIDTH,
    "check_f_contiguous_array_estimator": WIDTH,
    "check_fit2d_1feature": "wants scikit-learn's wording for 1 column; ours names the shapes",
    "check_fit2d_1sample": WIDTH,
    "check_fit2d_predict1d": WIDTH,
    "check_fit_check_is_fitted": WIDTH,
    "check_fit_idempotent": WIDTH,
    "check_fit_score_takes_y": WIDTH,
    "check_methods_sample_order_invariance": WIDTH,
    "check_methods_subset_invariance": WIDTH,
    "check_n_features_in": WIDTH,
    "check_n_features_in_after_fitting": WIDTH,
    "check_pipeline_consistency": WIDTH,
    "check_positive_only_tag_during_fit": WIDTH,
    "check_readonly_memmap_input": WIDTH,
    "check_supervised_y_2d": WIDTH,
}

SMALL = {"layers": (784, 30, 10), "epochs": 3}


@parametrize_with_checks(
    [DigitClassifier(layers=(784, 10), epochs=1)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
    xfail_strict=True,  # a check listed above that starts passing must be struck off
)
def test_scikit_learn_checks(estimator, check) -> None:
    check(estimator)


@pytest.fixture(scope="module")
def digits(mnist) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """1,000 training and 500 test digits as uint8 28x28 images, as users often hold them."""

    def grey(images: np.ndarray) -> np.ndarray:
        return np.rint(images * 255).astype(np.uint8).reshape(-1, 28, 28)

    train, test = mnist.train.head(1000), mnist.test.head(500)
    return grey(train.images), train.labels, grey(test.images), test.labels


@pytest.fixture(scope="module")
def fitted(digits) -> DigitClassifier:
    images, labels, _, _ = digits
    return DigitClassifier(**SMALL).fit(images, labels)


def test_parameters_are_the_spec_fields_with_their_defaults() -> None:
    defaults = DigitClassifier().get_params()
    spec_defaults = Spec().model_dump()
    assert set(defaults) == set(spec_defaults) | {"validation_fraction", "verbose"}
    assert defaults.pop("layers") == tuple(spec_defaults.pop("layers"))
    assert defaults.pop("validation_fraction") == VALIDATION_FRACTION
    assert defaults.pop("verbose") is False
    assert defaults.pop("eta") is None and spec_defaults.pop("eta") == 0.5  # the optimizer's
    assert DigitClassifier(optimizer="adam").spec().eta == 0.001
    assert defaults == {name: spec_defaults[name] for name in defaults}
    assert DigitClassifier(eta=0.1, layers=[784, 10]).spec() == Spec(eta=0.1, layers=[784, 10])


def test_fit_predict_score(fitted: DigitClassifier, digits) -> None:
    _, _, images, labels = digits
    assert fitted.classes_.tolist() == list(range(10)) and fitted.n_features_in_ == 784
    assert len(fitted.history_) == 3 and fitted.model_.calibration is not None
    answers = fitted.predict(images)
    assert answers.shape == (500,)
    assert fitted.score(images, labels) == (answers == labels).mean() > 0.7
    np.testing.assert_array_equal(fitted.predict(images.reshape(500, 784) / 255), answers)
    probabilities = fitted.predict_proba(images)
    assert probabilities.shape == (500, 10)
    np.testing.assert_allclose(probabilities, fitted.model_.predict_proba(images), rtol=1e-6)


def test_the_model_inside_says_what_it_learned_from(fitted: DigitClassifier, tmp_path) -> None:
    """Saved, the model records that it learned from the images given to fit, not from
    MNIST, so `digitlab info` does not offer its spec's command as the one that trains it
    again; a run started from its weights says so too."""
    from digitlab.nn.model_file import load_model
    from digitlab.train.trainer import weights_of

    expected = "900 images given to DigitClassifier.fit, and 100 more held back"
    assert fitted.model_.trained_on.startswith(expected)
    save_model(tmp_path / "m.npz", fitted.model_)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.trained_on == fitted.model_.trained_on
    text = loaded.summary()
    assert f"Trained on: {loaded.trained_on}" in text
    assert "it trains on MNIST, so it trains another model, not this one:" in text
    assert "command that trains it again" not in text
    assert loaded.describe().to_dict()["trained_on"] == loaded.trained_on
    assert weights_of(loaded).endswith(f"` on {loaded.trained_on}")


def test_any_labels_of_up_to_ten_classes(digits) -> None:
    train_images, train_labels, test_images, test_labels = digits
    names = {3: "three", 7: "seven"}

    def subset(images, labels):
        keep = np.isin(labels, list(names))
        return images[keep], np.array([names[d] for d in labels[keep]])

    classifier = DigitClassifier(**SMALL).fit(*subset(train_images, train_labels))
    images, expected = subset(test_images, test_labels)
    assert classifier.classes_.tolist() == ["seven", "three"]
    probabilities = classifier.predict_proba(images)
    assert probabilities.shape == (len(images), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert set(classifier.predict(images)) <= set(names.values())
    assert classifier.score(images, expected) > 0.9
    with pytest.raises(ArrayError, match="11 classes"):
        DigitClassifier(**SMALL).fit(train_images[:110], np.arange(110) % 11)


def test_a_fit_is_deterministic_picklable_and_clonable(fitted: DigitClassifier, digits) -> None:
    images, labels, test_images, _ = digits
    again = clone(fitted)
    assert not hasattr(again, "model_") and again.get_params() == fitted.get_params()
    assert again.fit(images, labels) is again
    np.testing.assert_array_equal(
        again.predict_proba(test_images), fitted.predict_proba(test_images)
    )
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(test_images), fitted.predict(test_images))


def test_lists_read_only_arrays_and_a_column_of_labels(fitted: DigitClassifier, digits) -> None:
    images, labels, test_images, _ = digits
    frozen = images.copy()
    frozen.flags.writeable = False
    with pytest.warns(DataConversionWarning):
        classifier = DigitClassifier(**SMALL).fit(frozen, labels.reshape(-1, 1))
    np.testing.assert_array_equal(classifier.predict(test_images), fitted.predict(test_images))
    np.testing.assert_array_equal(
        fitted.predict(test_images[:5].tolist()), fitted.predict(test_images[:5])
    )


def test_a_data_frame_s_column_names_are_kept_and_checked(digits, monkeypatch) -> None:
    """Kaggle's MNIST CSV has columns pixel0 ... pixel783: fit keeps the names, as
    scikit-learn's estimators do, and predict notices other names or none."""
    pandas = pytest.importorskip("pandas")
    train_images, train_labels, test_images, test_labels = digits
    names = [f"pixel{i}" for i in range(784)]
    frame = pandas.DataFrame(train_images.reshape(-1, 784), columns=names)
    classifier = DigitClassifier(**SMALL).fit(frame, train_labels)
    assert classifier.feature_names_in_.tolist() == names and classifier.n_features_in_ == 784
    test_rows = test_images.reshape(-1, 784)
    answers = classifier.predict(pandas.DataFrame(test_rows, columns=names))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(classifier.predict(test_rows), answers)
    with pytest.raises(ValueError, match="feature names should match"):
        classifier.predict(pandas.DataFrame(test_rows, columns=names[::-1]))
    unnamed = DigitClassifier(**SMALL).fit(train_images, train_labels)
    assert not hasattr(unnamed, "feature_names_in_")
    # a refit that fails leaves the fitted estimator whole: names and model still agree
    with pytest.raises(ArrayError):
        classifier.fit(frame.iloc[:, :700], train_labels)
    assert classifier.feature_names_in_.tolist() == names
    np.testing.assert_array_equal(
        classifier.predict(pandas.DataFrame(test_rows, columns=names)), answers
    )
    # column names scikit-learn refuses are refused before any training
    mixed = pandas.DataFrame(test_rows, columns=[0, *names[1:]])
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "run", lambda *a, **k: pytest.fail("trained before checking"))
        with pytest.raises(TypeError, match="feature names"):
            DigitClassifier(**SMALL).fit(mixed, test_labels)
    # pandas' nullable integer columns are the integers they hold
    grey = pandas.DataFrame(np.rint(test_rows * 255).astype(np.int64), columns=names)
    np.testing.assert_array_equal(
        classifier.predict(grey.astype("Int64")), classifier.predict(grey)
    )


def test_verbose_shows_the_epochs_and_quiet_is_the_default(digits, capsys) -> None:
    images, labels, _, _ = digits
    DigitClassifier(**SMALL, verbose=True).fit(images, labels)
    assert "epoch" in capsys.readouterr().err
    DigitClassifier(**SMALL).fit(images, labels)
    assert capsys.readouterr().err == ""


def test_some_digits_train_their_own_outputs_so_the_model_answers_digits(digits) -> None:
    """Trained on the 3s and 7s only, the model inside still answers 3 and 7 (a model file
    saved from it reads digits like any other), and agrees with the estimator."""
    train_images, train_labels, test_images, test_labels = digits
    keep, kept = np.isin(train_labels, [3, 7]), np.isin(test_labels, [3, 7])
    classifier = DigitClassifier(**SMALL).fit(train_images[keep], train_labels[keep])
    images, labels = test_images[kept], test_labels[kept]
    assert classifier.classes_.tolist() == [3, 7]
    assert set(classifier.model_.predict(images)) <= {3, 7}
    assert classifier.model_.score(images, labels) == classifier.score(images, labels) > 0.9


def test_bad_input_is_one_clear_error(fitted: DigitClassifier, digits) -> None:
    images, labels, _, _ = digits
    with pytest.raises(NotFittedError):
        DigitClassifier().predict(images)
    with pytest.raises(ArrayError, match="got \\(3, 5\\)"):
        fitted.predict(np.zeros((3, 5)))
    with pytest.raises(ArrayError, match="from -1 to"):
        DigitClassifier(**SMALL).fit(images - 1.0, labels)
    with pytest.raises(ValueError, match="Unknown label type"):
        DigitClassifier(**SMALL).fit(images, labels + 0.5)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        DigitClassifier(**SMALL).fit(images, labels[:10])
    with pytest.raises(SpecError, match="DigitClassifier: eta"):
        DigitClassifier(eta=-1).fit(images, labels)
    with pytest.raises(SpecError, match="784"):
        DigitClassifier(layers=(100, 10)).fit(images, labels)
    with pytest.raises(SpecError, match="layers is a tuple"):
        DigitClassifier(layers="784,30,10").fit(images, labels)
    with pytest.raises(SpecError, match="validation_fraction must be between 0 and 1"):
        DigitClassifier(validation_fraction=1.5).fit(images, labels)
    with pytest.raises(ArrayError, match="too few"):
        DigitClassifier(**SMALL).fit(images[:1], labels[:1])
    with pytest.raises(TypeError, match="a fitted DigitClassifier's model is its model_"):
        save_model(Path("m.npz"), fitted)


def test_a_scaler_that_pushes_test_pixels_past_one_is_refused_not_misread(digits) -> None:
    """MinMaxScaler fitted on training digits maps a test pixel brighter than any seen to
    above 1: the array is refused rather than read as grey levels, i.e. as black."""
    from sklearn.preprocessing import MinMaxScaler

    images, _, test_images, _ = digits
    scaler = MinMaxScaler().fit(images.reshape(-1, 784))
    scaled = scaler.transform(test_images.reshape(-1, 784))
    assert scaled.max() > 1  # the case in point: some test pixel beyond the training range
    with pytest.raises(ArrayError, match=r"just past 1: clip them|on two scales"):
        pixel_rows(scaled)


def test_in_a_grid_search(digits) -> None:
    images, labels, test_images, test_labels = digits
    search = GridSearchCV(DigitClassifier(**SMALL), {"eta": [0.01, 0.5]}, cv=2)
    search.fit(images, labels)
    assert search.best_params_ == {"eta": 0.5}  # 0.01 learns little in three epochs
    assert search.score(test_images, test_labels) > 0.7


def test_in_cross_val_score(digits) -> None:
    images, labels, _, _ = digits
    scores = cross_val_score(DigitClassifier(**SMALL), images.reshape(-1, 784), labels, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.6


def test_in_a_pipeline(digits) -> None:
    images, labels, test_images, test_labels = digits
    pipeline = make_pipeline(MinMaxScaler(clip=True), DigitClassifier(**SMALL))
    pipeline.fit(images.reshape(-1, 784), labels)
    assert pipeline.score(test_images.reshape(-1, 784), test_labels) > 0.7
    assert pipeline.get_params()["digitclassifier__batch_size"] == Spec().batch_size


def test_without_scikit_learn_the_import_names_the_extra() -> None:
    code = "import sys; sys.modules['sklearn'] = None; import digitlab.interop.sklearn"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: digitlab.interop.sklearn needs scikit-learn: pip install 'digitlab[sklearn]'"
    )
