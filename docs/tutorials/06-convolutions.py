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
# # Convolutional networks (chapter 6)
#
# Every network so far has treated an image as a list of 784 numbers: it would learn
# just as well if we shuffled the pixels the same way in every image.  That throws away
# what we know best about images, that nearby pixels belong together.  A
# **convolutional network** uses that knowledge.  Chapter 6 of *Neural Networks and
# Deep Learning* builds one from three ideas:
#
# - **local receptive fields**: each hidden neuron looks at a small patch of the image,
#   5×5 pixels, not at all of it;
# - **shared weights**: all the neurons of one *feature map* use the same 5×5 weights
#   and bias, so they detect the same feature (an edge, say) wherever it appears;
# - **pooling**: each 2×2 block of a feature map is summarised by its largest value, so
#   the next layer learns *that* a feature is there, roughly where, not exactly where.
#
# In this notebook we build the book's first convolutional network, train it briefly
# next to the book's fully-connected network and look inside it.
#
# **Quick mode.** With `DIGITLAB_TUTORIAL_QUICK=1` both networks train for 2 epochs on
# 1,000 images and are measured on 1,000 validation and test images, so the notebook
# runs in well under a minute; the networks are then barely trained and their accuracy
# means little.  Without it they train for 10 epochs on 10,000 images, which takes
# minutes: still a short version of the book's 60 epochs on 50,000.

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
    data = data.head(validation=1_000, test=1_000)
brief = dict(train_size=1_000, epochs=2) if QUICK else dict(train_size=10_000, epochs=10)

# %% [markdown]
# ## The networks
#
# A convolutional network's layers are written as texts.  `conv:20:5` is a
# convolutional layer of 20 feature maps, each looking at 5×5 patches; `pool:2`
# max-pools 2×2 blocks; `dense:100` is a fully-connected layer of 100 neurons; and the
# last `dense:10` is the output, one neuron per digit.  The preset `book-ch6-conv1` is
# the book's first convolutional network; `book-ch6-fc` the fully-connected network the
# book compares it with.  Both use sigmoid hidden neurons, a softmax output layer with
# the log-likelihood cost and η = 0.1, as the book does.

# %%
convolutional = presets.get("book-ch6-conv1").spec.with_overrides(**brief)
fully_connected = presets.get("book-ch6-fc").spec.with_overrides(**brief)
print("convolutional:  ", convolutional.layers)
print("fully connected:", fully_connected.layers)

# %% [markdown]
# ## Training both
#
# The same images, the same epochs, the same seed.  A convolution costs far more
# arithmetic than a dense layer, so the convolutional network trains much more slowly
# on a CPU.

# %%
results = {}
for name, spec in [("fully connected", fully_connected), ("convolutional", convolutional)]:
    results[name] = Trainer(spec, data).run()

plt.figure()
for name, result in results.items():
    accuracy = 100 * np.array(result.history.history["val_accuracy"])
    plt.plot(np.arange(1, len(accuracy) + 1), accuracy, marker="o", label=name)
plt.xlabel("epoch")
plt.ylabel("validation accuracy (%)")
plt.legend()
plt.show()

for name, result in results.items():
    model = result.model
    seconds = sum(record.seconds for record in result.history)
    print(
        f"{name:>15}: test accuracy {model.score(data.test.images, data.test.labels):.2%}, "
        f"training passes {seconds:.1f} s"
    )

# %% [markdown]
# What the full runs gave (50,000 images, 60 epochs, seed 0, the test accuracy at the
# epoch with the best validation accuracy), from
# [docs/results/cnn.md](../results/cnn.md): the fully-connected `book-ch6-fc` reached
# 97.91 % (the book: 97.80 %) in about 1 minute of training, the convolutional
# `book-ch6-conv1` 98.81 % (the book: 98.78 %) in about 7.  Adding a second
# convolutional layer, `book-ch6-conv2`, gave 99.02 %; ReLU neurons, the training set
# expanded by one-pixel shifts, dropout and an ensemble of five such networks took our
# runs of the book's networks to 99.63 % (the book: 99.67 %), and our own
# `cnn-best-ensemble` reached 99.70 %.
#
# ## Inside the convolutional network
#
# `summary()` lists the layers with the shape of what each one outputs for one image.
# A 5×5 patch fits in 24×24 places on a 28×28 image, so each of the 20 feature maps is
# 24×24; pooling halves that to 12×12.  Because the weights are shared, the whole
# convolutional layer has only 20 × (5×5 + 1) = 520 parameters; most of the network's
# parameters sit in the dense layer that reads the 20 pooled maps.

# %%
print(results["convolutional"].model.summary())

# %% [markdown]
# Each feature map's 25 shared weights are its *filter*.  Shown as 5×5 images (dark:
# large positive weights, light: negative), they are the features the first layer looks
# for.  The book shows those of its fully trained network, with clear spatial structure;
# compare what a quick run learns with what a longer one does.

# %%
filters = results["convolutional"].model.network.arrays()[0].reshape(5, 5, 20)
fig, axes = plt.subplots(2, 10, figsize=(10, 2.4))
for index, ax in enumerate(axes.flat):
    ax.imshow(filters[:, :, index], cmap="gray_r")
    ax.axis("off")
fig.suptitle("the 20 learned 5×5 filters of the convolutional layer")
plt.show()

# %% [markdown]
# ## Things to try
#
# - The book's second network: `presets.get("book-ch6-conv2")`, with a second
#   convolutional layer of 40 feature maps.
# - Your own layers, for example
#   `convolutional.with_overrides(layers=["conv:32:3", "pool:2", "dense:100", "dense:10"])`.
# - The full runs from the command line, for example
#   `digitlab train --preset book-ch6-conv1 --out conv1.npz` (7 minutes of training in
#   docs/results/cnn.md).
