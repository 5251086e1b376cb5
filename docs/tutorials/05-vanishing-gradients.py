# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why deep networks are hard to train (chapter 5)
#
# More hidden layers should let a network build up more abstract ideas: strokes, then
# loops and corners, then digits.  Yet chapter 5 of *Neural Networks and Deep Learning*
# finds that adding sigmoid hidden layers to the MNIST network barely helps.  The reason
# is the **vanishing gradient**: the layers near the input learn far more slowly than
# the layers near the output.
#
# The book measures how fast a layer learns by the length of the gradient of the cost
# with respect to its biases, ‖∂C/∂b‖.  digitlab's trainer measures exactly that for
# every layer, together with the weight norms and the saturated and dead neurons, on a
# fixed batch of 1,000 training images: its *diagnostics*.  In this notebook we use them
# to see the gradient vanish in sigmoid networks, and to see what happens with ReLU
# neurons instead.
#
# **Quick mode.** With `DIGITLAB_TUTORIAL_QUICK=1` the training in section 3 runs for 30
# epochs instead of the book's 500, and measures on 2,000 validation images; the
# measurements at initialisation are the same in both modes.  The full run takes
# minutes.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from digitlab import presets
from digitlab.data import load_mnist
from digitlab.train import Trainer

QUICK = os.environ.get("DIGITLAB_TUTORIAL_QUICK") == "1"

data = load_mnist()
if QUICK:
    data = data.head(validation=2_000)

# %% [markdown]
# ## 1. The book's deep networks
#
# The book's experiment uses networks of 30-neuron sigmoid layers, the cross-entropy
# cost and chapter 3's initialisation (weights with standard deviation 1/√n_in), trained
# on the first 1,000 training images by full-batch gradient descent with η = 0.1 and
# λ = 5.0.  We start from chapter 3's network and change what differs.

# %%
def deep(hidden_layers: int, activation: str):
    """The book's chapter 5 network with this many 30-neuron hidden layers."""
    return presets.get("book-ch3-ce").spec.with_overrides(
        layers=[784, *[30] * hidden_layers, 10],
        activation=activation,
        init="normal",
        eta=0.1,
        lmbda=5.0,
        train_size=1_000,
        batch_size=1_000,
        epochs=30 if QUICK else 500,
    )


def first_over_last(speeds) -> str:
    """The first hidden layer's speed as a fraction of the last's, as the book writes it."""
    ratio = speeds[0] / speeds[-1]
    return f"1/{1 / ratio:.3g}" if ratio < 1 else f"{ratio:.3g}"


deep(4, "sigmoid").layers

# %% [markdown]
# ## 2. The speed of each layer at the start
#
# `Trainer(spec, data).diagnose()` measures the diagnostics of the initial weights,
# before any training.  `.hidden` holds the hidden layers, input side first; each has a
# `bias_gradient_norm`, the book's speed of learning.

# %%
at_start = {}
for activation in ["sigmoid", "relu"]:
    for hidden_layers in [2, 3, 4]:
        diagnostics = Trainer(deep(hidden_layers, activation), data).diagnose()
        at_start[activation, hidden_layers] = diagnostics.hidden
        speeds = [layer.bias_gradient_norm for layer in diagnostics.hidden]
        print(
            f"{activation:>7}, {hidden_layers} hidden layers: "
            + " / ".join(f"{speed:.3g}" for speed in speeds)
            + f"   first / last = {first_over_last(speeds)}"
        )

# %% [markdown]
# For the sigmoid networks the book reports 0.07 / 0.31 with two hidden layers,
# 0.012 / 0.060 / 0.283 with three and 0.003 / 0.017 / 0.070 / 0.285 with four: each
# layer learns several times more slowly than the one after it, and the first of four
# about 100 times more slowly than the last.  The numbers above come from one random
# start (seed 0); the medians of three seeds, in
# [docs/results/book.md](../results/book.md#chapter-5-the-speed-of-learning-of-each-hidden-layer),
# are within 28 % of the book's for every layer.
#
# With ReLU hidden neurons (ours, not the book's) the speeds fall far more gently
# towards the input.

# %%
layers = np.arange(1, 5)
fig, ax = plt.subplots()
for offset, activation in [(-0.2, "sigmoid"), (0.2, "relu")]:
    speeds = [layer.bias_gradient_norm for layer in at_start[activation, 4]]
    ax.bar(layers + offset, speeds, width=0.4, label=activation)
ax.set(
    xticks=layers,
    xlabel="hidden layer (1 = next to the input)",
    ylabel="‖∂C/∂b‖ at the start",
    yscale="log",
    title="Four hidden layers of 30 neurons, before training",
)
ax.legend()
plt.show()

# %% [markdown]
# **Why.** Backpropagation carries the error back one layer at a time, multiplying it at
# each layer by the weights and by the slope of the activation, σ′(z).  The sigmoid's
# slope is at most 1/4, and with weights of about the size chapter 3 gives them, the
# product is usually smaller than 1: the error shrinks at every layer it passes.  A
# ReLU's slope is 1 wherever it is active, so nothing forces that shrinking.
#
# ReLU pays another way: a ReLU whose weighted input is negative for every image outputs
# 0 and passes back no gradient at all.  The diagnostics call those neurons *dead*.

# %%
for hidden_layers in [2, 3, 4]:
    dead = [layer.dead for layer in at_start["relu", hidden_layers]]
    print(f"relu, {hidden_layers} hidden layers, dead at the start:", [f"{d:.0%}" for d in dead])

# %% [markdown]
# Over three seeds, 35 % of the hidden ReLUs of the four-layer network were dead at
# initialisation ([docs/results/book.md](../results/book.md#chapter-5-the-speed-of-learning-of-each-hidden-layer)).
#
# ## 3. While it learns
#
# The trainer records the diagnostics after every epoch in `EpochRecord.diagnostics`, so
# the history holds each layer's speed over the whole run.  We train the four-layer
# network with each activation.  The test set is not needed here (`use_test=False`),
# and with hundreds of epochs a line per epoch would be too many (`progress=False`).

# %%
histories = {
    activation: Trainer(deep(4, activation), data, use_test=False).run(progress=False).history
    for activation in ["sigmoid", "relu"]
}

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, (activation, history) in zip(axes, histories.items()):
    epochs = np.arange(1, len(history) + 1)
    speeds = np.array(
        [[layer.bias_gradient_norm for layer in record.diagnostics.hidden] for record in history]
    )
    for layer in range(speeds.shape[1]):
        ax.plot(epochs, speeds[:, layer], label=f"hidden layer {layer + 1}")
    ax.set(title=activation, xlabel="epoch", yscale="log")
    print(
        f"{activation}: after {len(history)} epochs first / last = "
        f"{first_over_last(speeds[-1])}, "
        f"validation accuracy {history[-1].validation_accuracy:.2%}"
    )
axes[0].set_ylabel("‖∂C/∂b‖")
axes[0].legend()
plt.show()

# %% [markdown]
# After the book's 500 epochs (one seed, in
# [docs/results/book.md](../results/book.md#chapter-5-the-speed-of-learning-of-each-hidden-layer)),
# the sigmoid network's first hidden layer still learned 1/128 as fast as its last (the
# book: 1/113), and it was the slowest layer in every epoch.  With ReLU the first layer
# ended 4.51 times *faster* than the last, and was the slowest in only 2 % of the epochs.
#
# ![Speed of each hidden layer per epoch, sigmoid and ReLU](../results/book/speed.png)
#
# ## 4. Does it matter for accuracy?
#
# The [activations study](../studies/activations/README.md) trained networks with one
# and three hidden layers of 100 neurons (softmax outputs, 20 epochs, all 50,000
# images), four activations, five learning rates and three seeds each.  In its
# three-layer networks the first hidden layer's gradient was 0.043 times the last's at
# initialisation with sigmoid neurons, against 0.41 with ReLU (medians over runs).  Going
# from one hidden layer to three cost the sigmoid networks accuracy, 97.98 % to 97.68 %
# (-0.29 points, p = 0.004 over the seeds), and the ReLU networks less, 97.94 % to
# 97.76 % (-0.18 points, p = 0.03); for tanh and leaky ReLU the change was not shown to
# differ.  During training the study measured the sigmoid networks' first
# layer at 1.2 times the last's (median over epochs): in those networks, once training
# was under way, the first layer was no longer the slow one.
#
# ![Speed of learning of each layer in the activations study](../studies/activations/gradients.png)
#
# ## Things to try
#
# - `deep(6, "sigmoid")`: how slow is the first of six layers?
# - `activation="tanh"` or `"leaky-relu"` in `deep`.
# - `init="he"` with ReLU (weights with standard deviation √(2/n_in)): fewer dead
#   neurons?
