"""The experiments behind the book's figures in chapters 3 and 5, run on our engine.

    python benchmarks/book.py --figures-only [--figure NAME ...] [--quick] [--out FILE]

Four experiments, each the book's own (its figure scripts are in fig/ of
github.com/mnielsen/neural-networks-and-deep-learning; the settings are theirs), each in
a module of its own: :mod:`.overfitting` and L2 regularisation, :mod:`.initialisation`
of the weights and the learning :mod:`.slowdown` of a saturated neuron (chapter 3), and
the :mod:`.speed` of learning of each hidden layer (chapter 5; its section, the longest,
is in :mod:`.speed_section`).

Each module holds the dataclasses of what its experiment measures and the four things
:mod:`.registry` lists for book.py: ``TITLE``, the heading of its section; ``run``, which
runs it and returns what it measured; ``draw``, which draws its plot; and ``section``,
which writes its Markdown section: what the book reports, what we measured, the plot,
and sentences generated from the numbers saying how far ours is from the book and why,
where a cause was measured.  The book's numbers come from its text or, where the text
gives none, from the data files its figure scripts wrote (named where used).  What the
modules share is in :mod:`.training` (how much to run, and one training run),
:mod:`.plotting` and :mod:`.phrases`.
"""

import matplotlib

# Set here, before any module of the package imports pyplot: the plots are files only.
matplotlib.use("Agg")
