"""An exponential moving average of a network's weights (Polyak averaging).

Mini-batch steps leave the weights jittering around a good region rather than resting in
it.  Their running average -- ``shadow = d * shadow + (1 - d) * w`` after every
optimiser step -- sits nearer its middle, and usually classifies better than the weights
of any single step, at the cost of one extra copy of the network.

Two choices, and why:

- **Warm-up.**  The decay used at update ``t`` (counted from 0) is
  ``min(d, (1 + t) / (10 + t))``, as in TensorFlow's ``ExponentialMovingAverage`` with
  ``num_updates``.  Without it the average would start from the random initial weights
  and, with d = 0.999, still hold about a third of them after 1,000 steps; with it the early
  average follows the weights closely and the full decay takes over after about
  10 / (1 - d) steps.
- **Batch-norm statistics are averaged too.**  The average covers everything a saved
  network holds (:meth:`~digitlab.nn.network.Network.arrays`): the trained parameters
  and the batch-norm layers' running means and variances alike, as timm's ``ModelEma``
  does.  The raw network's statistics describe the activations of its latest weights;
  averaging them over the same window as the weights keeps the two roughly in step,
  without an extra pass over the data to re-estimate them.

The average is kept as a network of its own, so it can be measured, kept as the best
epoch's weights and saved exactly as the trained network would be.
"""

from __future__ import annotations

import numpy as np

from digitlab.nn.network import Network

#: The warm-up's decay at update t is (1 + t) / (WARMUP_OFFSET + t), capped at the decay.
WARMUP_OFFSET = 10


class WeightAverage:
    """The moving average of ``source``'s arrays with decay ``decay``, held in
    ``averaged`` (a network of the same spec, whose own values are overwritten).

    Call :meth:`update` after every optimiser step.  :meth:`state` and
    :meth:`load_state` save and restore it, so a resumed run averages on exactly as
    an uninterrupted one.
    """

    def __init__(self, source: Network, averaged: Network, decay: float) -> None:
        self.source = source
        self.network = averaged
        self.decay = decay
        averaged.load_arrays(source.arrays())
        self.updates = np.zeros(1, dtype=np.int64)
        self._difference = [np.empty_like(array) for array in averaged.arrays()]

    def current_decay(self) -> float:
        """The decay the next update uses (see the warm-up above)."""
        t = int(self.updates[0])
        return min(self.decay, (1 + t) / (WARMUP_OFFSET + t))

    def update(self) -> None:
        """Move the average towards the source's current values:
        ``shadow += (1 - d_t) * (w - shadow)``, which is ``d_t * shadow + (1 - d_t) * w``."""
        rate = 1 - self.current_decay()
        pairs = zip(self.network.arrays(), self.source.arrays(), self._difference, strict=True)
        for shadow, value, difference in pairs:
            np.subtract(value, shadow, out=difference)
            difference *= difference.dtype.type(rate)
            shadow += difference
        self.updates += 1

    def state(self) -> dict[str, np.ndarray]:
        """The arrays a checkpoint must hold to continue the average exactly."""
        arrays = {f"value/{i}": a for i, a in enumerate(self.network.arrays())}
        arrays["updates"] = self.updates
        return arrays

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` saved (KeyError or ValueError if it does not fit)."""
        values = [state[f"value/{i}"] for i in range(len(self.network.arrays()))]
        self.network.load_arrays(values)
        self.updates[...] = state["updates"]
