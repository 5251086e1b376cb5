"""digitlab: handwritten-digit recognition with neural networks written from scratch.

Three lines from a notebook::

    from digitlab import load_mnist, presets, Trainer
    result = Trainer(presets.get("book-ch1").spec, load_mnist()).run()
    print(result.history.best)
"""

from digitlab.data import load_mnist
from digitlab.nn import load_model, save_model
from digitlab.spec import Spec, make_spec
from digitlab.train import Trainer

__version__ = "0.1.0"
__all__ = ["Spec", "Trainer", "load_mnist", "load_model", "make_spec", "save_model"]
