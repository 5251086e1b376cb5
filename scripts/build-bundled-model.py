"""Train the model that ships with ``digitlab serve``, from the ``mlp-web`` preset.

    python scripts/build-bundled-model.py

Writes ``src/digitlab/serve/default-model.npz`` (seed 0, the full 50,000 training
images; the saved weights are those of the best validation epoch).
"""

from pathlib import Path

from digitlab.data import load_mnist
from digitlab.nn.model_file import save_model
from digitlab.presets import get
from digitlab.train import Trainer
from digitlab.train.callbacks import EpochLog

TARGET = Path(__file__).resolve().parent.parent / "src/digitlab/serve/default-model.npz"


def main() -> None:
    result = Trainer(get("mlp-web").spec, load_mnist(), [EpochLog()]).run()
    save_model(TARGET, result.model)
    metrics = result.model.metrics
    print(
        f"wrote {TARGET.name}: best epoch {metrics['best_epoch']}, validation "
        f"{metrics['validation_accuracy']:.2%}, test {metrics['test_accuracy']:.2%}"
    )


if __name__ == "__main__":
    main()
