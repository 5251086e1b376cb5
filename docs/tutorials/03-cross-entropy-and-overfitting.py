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
# # Learning faster, generalising better (chapter 3)
#
# Chapter 3 of *Neural Networks and Deep Learning* improves the network of chapter 1 in
# three ways, and this notebook tries each of them:
#
# 1. the **cross-entropy cost**, which removes the *learning slowdown* of a neuron that
#    is badly wrong;
# 2. **L2 regularisation**, which keeps the weights small so that a network trained on
#    few images *overfits* less;
# 3. a better **weight initialisation**, which keeps hidden neurons out of saturation
#    at the start.
#
# For each, we measure the cause with digitlab's diagnostics, train small versions of
# the book's experiments, and compare with the results we measured in full, which are
# committed in [docs/results/book.md](../results/book.md) and the study reports in
# [docs/studies/](../studies/README.md).
#
# **Quick mode.** With `DIGITLAB_TUTORIAL_QUICK=1` every run is cut down (fewer images,
# fewer epochs) so the notebook runs in well under a minute.  The numbers this notebook
# prints are then from those small runs, not the book's experiments; without the
# variable it runs the book's settings, which takes minutes.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from digitlab import presets
from digitlab.data import load_mnist
from digitlab.train import Trainer

QUICK = os.environ.get("DIGITLAB_TUTORIAL_QUICK") == "1"

data = load_mnist()
if QUICK:  # measure on 2,000 validation and test images instead of 10,000 each
    data = data.head(validation=2_000, test=2_000)

# %% [markdown]
# ## 1. The learning slowdown, and the cross-entropy cost
#
# The book starts with a single sigmoid neuron that should turn the input 1 into the
# output 0.  It starts from the weight w = 2 and the bias b = 2, so its output is
# σ(4) ≈ 0.98: badly wrong.  People learn fastest when they are badly wrong; this
# neuron, with the quadratic cost, hardly learns at all at first.  The reason is in the
# gradient.  For the quadratic cost C = (a − y)²/2 the gradient with respect to the
# bias is (a − y)·σ′(z), and σ′(z) is tiny when the neuron is saturated near 0 or 1.
# The cross-entropy cost is built so that the σ′(z) cancels: its gradient is a − y.

# %%
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


w, b, x, y = 2.0, 2.0, 1.0, 0.0
z = w * x + b
a = sigmoid(z)
slope = a * (1 - a)  # σ'(z)
print(f"output a = {a:.3f}, slope σ'(z) = {slope:.4f}, 1/σ'(z) = {1 / slope:.0f}")
print(f"quadratic cost:     ∂C/∂b = (a − y)·σ'(z) = {(a - y) * slope:.4f}")
print(f"cross-entropy cost: ∂C/∂b = a − y        = {a - y:.4f}")

# %% [markdown]
# The quadratic cost's gradient carries the factor σ′(z), so its steps are 1/σ′(z)
# times smaller: 57 times, here.  When we trained this neuron for [docs/results/book.md](../results/book.md#chapter-3-the-learning-slowdown-of-a-saturated-neuron),
# with the quadratic cost at η = 0.15 it needed 152 epochs to lose 10 % of its cost;
# with the cross-entropy cost at the same η, 2 epochs.
#
# ![One saturated neuron, quadratic against cross-entropy cost](../results/book/slowdown.png)
#
# The same happens to the output neurons of a whole network.  digitlab's *diagnostics*
# measure, among other things, the length of each layer's bias gradient ‖∂C/∂b‖ on a
# fixed batch of 1,000 training images.  `Trainer.diagnose()` measures it before any
# training, at the initial weights.  Below, two copies of chapter 3's network that
# differ only in the cost start from the same weights (the same seed).

# %%
cross_entropy = presets.get("book-ch3-ce").spec
quadratic = cross_entropy.with_overrides(cost="quadratic")

speeds = {}
for name, spec in [("quadratic", quadratic), ("cross-entropy", cross_entropy)]:
    speeds[name] = Trainer(spec, data).diagnose().layers[-1].bias_gradient_norm
    print(f"{name:>13}: output layer ‖∂C/∂b‖ = {speeds[name]:.4f}")
print(f"quadratic / cross-entropy: {speeds['quadratic'] / speeds['cross-entropy']:.2f}")

# %% [markdown]
# In the [learning-rate study](../studies/learning-rate/README.md), which trained
# [784,30,10] with both costs at nine learning rates and three seeds each, the output
# layer's initial gradient was 0.18 times as large with the quadratic cost as with
# cross-entropy (median of 27 runs; that study starts from section 3's N(0,1/n_in)
# weights, the network above from N(0,1) weights, so the two ratios differ).  After one epoch at η = 0.001 the quadratic cost
# had reached 15.20 % validation accuracy and cross-entropy 51.10 %.  Each cost's best
# learning rate differed by a factor of 10 (η = 1 for the quadratic, η = 0.1 for
# cross-entropy), and at their best the two were not shown to differ (96.38 % against
# 96.39 %): a larger step can make up for a smaller gradient, once you know to take it.
#
# Let us see the slowdown in training: both costs at the same learning rate, the
# cross-entropy network's η = 0.5.

# %%
first_epochs = dict(epochs=3, train_size=5_000) if QUICK else dict(epochs=5)
plt.figure()
for name, spec in [("quadratic", quadratic), ("cross-entropy", cross_entropy)]:
    history = Trainer(spec.with_overrides(**first_epochs), data).run().history
    accuracy = 100 * np.array(history.history["val_accuracy"])
    print(f"{name:>13}: validation accuracy per epoch", np.round(accuracy, 2))
    plt.plot(np.arange(1, len(accuracy) + 1), accuracy, marker="o", label=f"{name} cost")
plt.xlabel("epoch")
plt.ylabel("validation accuracy (%)")
plt.legend()
plt.show()

# %% [markdown]
# ## 2. Overfitting, and L2 regularisation
#
# A network with 23,860 weights and biases can fit 1,000 training images in ways that
# have nothing to do with what makes a 7 a 7.  The book shows this by training
# [784,30,10] on only the first 1,000 training images for 400 epochs: the cost on those
# images keeps falling, while on unseen images the cost starts to *rise* and the
# accuracy stops improving.  That is overfitting.
#
# L2 regularisation adds (λ/2n)·Σw² to the cost: every step now also shrinks each
# weight a little, so the network can only keep large weights that really pay.  We
# train the same network without it and with the book's λ = 0.1 (`lmbda` in a spec,
# because `lambda` is a Python keyword).

# %%
small = cross_entropy.with_overrides(train_size=1_000, epochs=40 if QUICK else 400)
runs = {}
for lmbda in [0.0, 0.1]:  # progress=False: no line per epoch for hundreds of epochs
    runs[lmbda] = Trainer(small.with_overrides(lmbda=lmbda), data).run(progress=False).history

fig, (costs, accuracies) = plt.subplots(1, 2, figsize=(11, 4))
for lmbda, history in runs.items():
    curves = history.history
    epochs = np.arange(1, len(history) + 1)
    costs.plot(epochs, curves["loss"], label=f"training cost, λ = {lmbda}")
    costs.plot(epochs, curves["val_loss"], label=f"validation cost, λ = {lmbda}")
    accuracies.plot(epochs, 100 * np.array(curves["val_accuracy"]), label=f"λ = {lmbda}")
costs.set(xlabel="epoch", ylabel="cost per image", yscale="log")
accuracies.set(xlabel="epoch", ylabel="validation accuracy (%)")
costs.legend()
accuracies.legend()
plt.show()

# %% [markdown]
# The training cost (`loss`) includes the penalty term when λ > 0; the validation
# cost (`val_loss`) never does.  Where does each run's validation cost bottom out, how
# good does each get, and how large are the hidden layer's weights at the end?  The last
# epoch's diagnostics hold the weight norms.

# %%
for lmbda, history in runs.items():
    validation_cost = history.history["val_loss"]
    lowest = int(np.argmin(validation_cost)) + 1
    hidden = history[-1].diagnostics.layers[0]
    print(
        f"λ = {lmbda}: validation cost lowest in epoch {lowest} of {len(history)}, "
        f"best validation accuracy {history.best.validation_accuracy:.2%}, "
        f"hidden-layer ‖w‖ at the end {hidden.weight_norm:.1f}"
    )

# %% [markdown]
# What we measured with the book's full settings (400 epochs, seeds 0 to 2), from
# [docs/results/book.md](../results/book.md#chapter-3-overfitting-and-l2-regularisation-against-it):
#
# - without regularisation the validation cost was lowest at epoch 16 (the book's test
#   cost at epoch 15) and had risen 45 % by epoch 400, while the training cost fell in
#   397 of 399 epochs; the best test accuracy was 83.42 % for seed 0 (the book: 82.27 %);
# - with λ = 0.1 the best test accuracy was 88.06 % (the book: 87.10 %), the validation
#   cost turned up only at epoch 397, and the hidden layer's weights ended 5.2 times
#   smaller (‖w‖ 30.0 against 155.1).
#
# The [regularization study](../studies/regularization/README.md) tried more penalties
# on the same 1,000 images, three seeds each.  L2 with λ = 3 was best, at 89.52 %
# validation accuracy against 83.65 % without a penalty; it shrank the first layer's
# weight norm from 155.6 to 13.1 and the gap between training and validation accuracy
# from 16.41 to 9.23 points.  Beyond that the penalty hurt: λ = 30 reached only 81.18 %.
# On all 50,000 images the picture changes: in the
# [regularization-full study](../studies/regularization-full/README.md), with
# [784,100,10], the best penalty (L2, λ = 1: 97.98 %) was not shown to differ from none
# (97.91 %), so the report recommends none, the simpler choice.
#
# ![Learning curves of the regularization study](../studies/regularization/cost-curves.png)

# %% [markdown]
# ## 3. Weight initialisation
#
# Chapter 1 drew every weight from a normal distribution with standard deviation 1.  A
# hidden neuron then sums 784 pixels times such weights, and its weighted input z is
# often large: the neuron saturates, σ′(z) is tiny, and it learns slowly, the same
# slowdown as before, now in the hidden layer, where the cross-entropy cost cannot
# cancel it.  The book's cure: standard deviation 1/√n_in, so that z stays near 0.  In a
# spec that is `init="normal"`; the old way is `init="large"`.
#
# The diagnostics count the saturated hidden neurons: the share of (image, neuron)
# pairs over the probe batch where the sigmoid's slope is under 1 % of its maximum.

# %%
# The book's experiment: [784,30,10], cross-entropy, η = 0.1, λ = 5.0, 30 epochs.
regularised = presets.get("book-ch3-l2").spec.with_overrides(eta=0.1)
starts = {"N(0,1) weights (init='large')": "large", "N(0,1/n_in) weights (init='normal')": "normal"}
for label, init in starts.items():
    hidden = Trainer(regularised.with_overrides(init=init), data).diagnose().layers[0]
    print(f"{label}: {hidden.saturated:.0%} of hidden responses saturated at the start")

# %% [markdown]
# Now train both and compare the validation accuracy per epoch.

# %%
short = dict(epochs=3, train_size=5_000) if QUICK else {}
plt.figure()
for label, init in starts.items():
    history = Trainer(regularised.with_overrides(init=init, **short), data).run().history
    accuracy = 100 * np.array(history.history["val_accuracy"])
    print(f"{label}: after epoch 1 {accuracy[0]:.2f} %, at the end {accuracy[-1]:.2f} %")
    plt.plot(np.arange(1, len(accuracy) + 1), accuracy, label=label)
plt.xlabel("epoch")
plt.ylabel("validation accuracy (%)")
plt.legend()
plt.show()

# %% [markdown]
# With the book's settings, over three seeds
# ([docs/results/book.md](../results/book.md#chapter-3-weight-initialisation)): 48 % of
# the hidden responses were saturated at the start with N(0,1) weights against 0 % with
# N(0,1/n_in); after the first epoch the new initialisation was ahead, 92.82 % against
# 87.26 % (median; the book: 92.70 % against 86.43 %), and after 30 epochs the two were
# level (96.40 % against 96.33 %; the book: 96.50 % against 96.37 %).  A better start
# makes learning faster, and here it does not change where learning ends.
#
# ![Validation accuracy per epoch from both initialisations](../results/book/initialisation.png)
#
# ## Things to try
#
# - The chapter 3 presets (`digitlab presets` lists them): `book-ch3-l2` adds λ = 5.0 on
#   all 50,000 images, `book-ch3-l2-100` has 100 hidden neurons.
# - In section 2, try `lmbda=3.0` (the regularization study's best on 1,000 images) or
#   `lmbda=30.0`.
# - Train the quadratic network of section 1 with `eta=3.0` instead: does the larger
#   step make up for the smaller gradient?
