"""Train the model that ships with ``digitlab serve`` and ``digitlab predict``, from the
``cnn-robust`` preset.

    python scripts/build-bundled-model.py

Trains cnn-robust at seed 0 on the 50,000 training images into
``out/cnn/cnn-robust-seed0.npz`` -- the run benchmarks/cnn.py and
benchmarks/robustness.py share, so a model already trained there is reused and an
interrupted run resumes -- then copies it to ``src/digitlab/serve/default-model.npz``.
The saved weights are those of the best validation epoch, calibrated again here (the
same fit as at the end of training, so a model trained by an older version gains what
calibration now holds): the temperature and "unsure" threshold on the validation set,
the digits' features on training images.  The file must stay small enough to ship in the
package (:data:`MAX_BYTES`).
"""

import sys
from pathlib import Path

from digitlab.data import load_mnist
from digitlab.evaluation.calibration import calibrated
from digitlab.nn.model_file import load_model, save_model
from digitlab.presets import get, seeded_name
from digitlab.train.callbacks import EpochLog
from digitlab.train.to_file import train_to_file

PRESET = "cnn-robust"
ROOT = Path(__file__).resolve().parent.parent
TRAINED = ROOT / "out/cnn" / f"{seeded_name(PRESET, 0)}.npz"
TARGET = ROOT / "src/digitlab/serve/default-model.npz"
MAX_BYTES = 2_000_000


def main() -> None:
    data = load_mnist()
    train_to_file(get(PRESET).spec, data, TRAINED, [EpochLog(PRESET)])
    model = calibrated(load_model(TRAINED), data.validation, data.train)
    save_model(TARGET, model)
    size = TARGET.stat().st_size
    if size > MAX_BYTES:
        sys.exit(f"error: {TARGET.name} is {size:,} bytes, over the {MAX_BYTES:,} allowed")
    metrics = model.metrics
    print(
        f"wrote {TARGET.name} ({size / 1e6:.2f} MB): {PRESET}, best epoch "
        f"{metrics.best_epoch}, validation {metrics.validation_accuracy:.2%}, test "
        f"{metrics.test_accuracy:.2%}; unsure below {model.calibration.unsure_below:.3f} or "
        f"beyond {model.calibration.unlike_above:.1f} from the digits' features"
    )


if __name__ == "__main__":
    main()
