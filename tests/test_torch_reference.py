"""Every layer, activation, cost and optimiser against PyTorch: forward is the standard operation.

The finite-difference checks (test_gradients.py) prove that each backward pass matches its
own forward pass; they cannot tell whether the forward pass is the operation the name
promises.  Here PyTorch, in float64, is the reference: on a few seeded random shapes each
piece of the engine must give torch's outputs, and its backward pass torch's autograd
gradients for the input and for every parameter, for a random upstream gradient (so the
whole vector-Jacobian product is checked, not one direction of it).

Our feature maps are channels-last (batch, height, width, channels) and torch's are
channels-first, so the torch side transposes in and out; its gradients then come back in
our layout.  Each case runs with the engine in float64 and in float32 (its training dtype),
always against torch in float64 on the very same values.

PyTorch is a test-only reference (installed by .ci/run), never a runtime dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import numpy as np
import pytest

from digitlab.nn.activations import ACTIVATIONS, make_activation
from digitlab.nn.conv import Conv2D, Pool2D
from digitlab.nn.costs import make_cost
from digitlab.nn.layers import Dense, Dropout, Layer, Parameter
from digitlab.nn.normalization import BatchNorm
from digitlab.nn.optimizers import make_optimizer
from digitlab.spec import CostName, OptimizerName

torch = pytest.importorskip("torch")
functional = torch.nn.functional


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Torch on one thread while these tests run: on tensors this small its thread pool
    only competes with NumPy's for the cores."""
    # with both pools spinning on a busy 2-core machine, a torch batch norm of 4 x 3 values
    # took 70 ms instead of 0.09 ms
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SEEDS = [0, 1, 2]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]

#: Largest difference allowed, relative to the largest reference value (or to 1 if that is
#: smaller).  In float64 both sides compute in double precision and differ only in the order
#: of their sums -- about 1e-16 per operation over sums of at most a few hundred terms --
#: while any difference of formula (a missing factor, a biased variance, a shifted window)
#: shows at 1e-3 or more: 1e-10 lies well between.  In float32 every one of those sums
#: rounds at 6e-8 relative, accumulating to a few 1e-6 at most: 1e-4 leaves a margin.
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def assert_matches(ours: np.ndarray | float, reference: torch.Tensor, dtype: type) -> None:
    expected = reference.detach().numpy()
    ours = np.asarray(ours)
    assert ours.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def tensor(array: np.ndarray) -> torch.Tensor:
    """A float64 copy of ``array`` (a copy: torch.from_numpy would share its memory)."""
    return torch.tensor(array, dtype=torch.float64)


def leaf(array: np.ndarray) -> torch.Tensor:
    """A float64 copy of ``array`` that torch's autograd differentiates with respect to."""
    return tensor(array).requires_grad_()


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def check_layer(
    layer: Layer,
    x: np.ndarray,
    reference: Callable[..., torch.Tensor],
    rng: np.random.Generator,
) -> None:
    """``layer``'s forward pass (training mode), input gradient and parameter gradients
    against ``reference(x, *params)`` in torch, params in the order of ``layer.params``."""
    x_t = leaf(x)
    params_t = [leaf(param.value) for param in layer.params]
    out_t = reference(x_t, *params_t)
    upstream = draw(rng, tuple(out_t.shape), x.dtype.type)
    out_t.backward(tensor(upstream))

    out = layer.forward(x, training=True)
    assert out.dtype == x.dtype
    assert_matches(out, out_t, x.dtype.type)
    assert_matches(layer.backward(upstream), x_t.grad, x.dtype.type)
    for param, param_t in zip(layer.params, params_t, strict=True):
        assert_matches(param.grad, param_t.grad, x.dtype.type)


# --- layers -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_dense(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    batch, inputs, outputs = rng.integers(1, 9, size=3)
    layer = Dense(draw(rng, (inputs, outputs), dtype), draw(rng, (outputs,), dtype))
    # our W is (inputs, outputs), the transpose of torch's (out_features, in_features)
    check_layer(
        layer, draw(rng, (batch, inputs), dtype), lambda x, w, b: functional.linear(x, w.T, b), rng
    )


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kernel", "winograd"), [(1, False), (2, False), (3, False), (3, True), (4, False), (5, False)]
)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv2d(channels: int, padding: str, kernel: int, winograd: bool, dtype: type) -> None:
    """Stride-1 convolution (a cross-correlation, as in torch), odd and even kernels: for
    'same', an even kernel's odd row and column of padding go after the image.  One input
    channel and several: their patches are laid out differently (see nn.conv).  3 x 3
    filters also by Winograd's transforms, which training takes for wider layers."""
    rng = np.random.default_rng(kernel)
    filters, batch = rng.integers(1, 4, size=2)
    height, width = rng.integers(kernel, kernel + 5, size=2)
    weights = draw(rng, (kernel, kernel, channels, filters), dtype)
    layer = Conv2D(weights, draw(rng, (filters,), dtype), padding=padding)
    layer.winograd = winograd

    def reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # our (K*K*C, F) matrix is the (K, K, C, F) kernel; torch's is (F, C, K, K)
        w = w.reshape(kernel, kernel, channels, filters).permute(3, 2, 0, 1).contiguous()
        return nhwc(functional.conv2d(nchw(x), w, b, padding=padding))

    x = draw(rng, (batch, height, width, channels), dtype)
    check_layer(layer, x, reference, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling(mode: str, seed: int, dtype: type) -> None:
    """Non-overlapping s x s pooling (torch's stride defaults to the window).  Random normal
    inputs have no tied maxima, where the two might route the gradient differently."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 4))
    batch, channels = rng.integers(1, 4, size=2)
    height, width = size * rng.integers(1, 5, size=2)
    pool = functional.max_pool2d if mode == "max" else functional.avg_pool2d
    check_layer(
        Pool2D(size, mode),
        draw(rng, (batch, height, width, channels), dtype),
        lambda x: nhwc(pool(nchw(x), size)),
        rng,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [2, 3])
def test_max_pooling_with_tied_maxima(size: int, dtype: type) -> None:
    """Tied maxima are common in real feature maps (a blank background convolves to the
    same value everywhere): the first of them in the window, row by row, takes the whole
    gradient, in torch as in ours."""
    rng = np.random.default_rng(size)
    x = rng.integers(0, 3, size=(3, 4 * size, 2 * size, 5)).astype(dtype)  # mostly ties
    check_layer(Pool2D(size), x, lambda x: nhwc(functional.max_pool2d(nchw(x), size)), rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_at_zero_is_the_identity(dtype: type) -> None:
    rng = np.random.default_rng(0)
    check_layer(
        Dropout(0.0, np.random.default_rng(1)),
        draw(rng, (5, 7), dtype),
        lambda x: functional.dropout(x, p=0.0, training=True),
        rng,
    )


# --- batch normalisation ------------------------------------------------------------------

LAYOUTS = ["dense", "conv"]


@dataclass
class BatchNormCase:
    """Our layer and torch's module (at its default momentum and epsilon) holding the same
    random scale, shift and running statistics, and the shape of the batches fed to both:
    rows for the 'dense' layout, channels-last maps for 'conv'."""

    layer: BatchNorm
    module: torch.nn.Module
    shape: tuple[int, ...]

    @classmethod
    def draw(cls, layout: str, rng: np.random.Generator, dtype: type) -> BatchNormCase:
        features = int(rng.integers(1, 5))
        layer = BatchNorm(features, dtype)
        layer.scale.value[...] = draw(rng, (features,), dtype)
        layer.shift.value[...] = draw(rng, (features,), dtype)
        layer.running_mean[...] = draw(rng, (features,), dtype)
        layer.running_var[...] = rng.uniform(0.5, 2, features)
        if layout == "dense":
            module = torch.nn.BatchNorm1d(features, dtype=torch.float64)
            shape = (int(rng.integers(2, 9)), features)  # torch needs 2 rows to train
        else:
            module = torch.nn.BatchNorm2d(features, dtype=torch.float64)
            batch, height, width = (int(n) for n in rng.integers(1, 5, size=3))
            shape = (batch, height + 1, width, features)  # 2 values per channel at least
        with torch.no_grad():
            for ours, theirs in [
                (layer.scale.value, module.weight),
                (layer.shift.value, module.bias),
                (layer.running_mean, module.running_mean),
                (layer.running_var, module.running_var),
            ]:
                theirs[...] = tensor(ours)
        return cls(layer, module, shape)

    def batch(self, rng: np.random.Generator) -> np.ndarray:
        return draw(rng, self.shape, self.layer.scale.value.dtype.type) * 3 + 1

    def torch_forward(
        self, x: torch.Tensor, scale: torch.Tensor | None = None, shift: torch.Tensor | None = None
    ) -> torch.Tensor:
        """torch's module on a batch in our layout, with ``scale`` and ``shift`` (if given)
        standing in for its weight and bias."""
        replaced = {"weight": scale, "bias": shift} if scale is not None else {}
        if len(self.shape) == 2:
            return torch.func.functional_call(self.module, replaced, (x,))
        return nhwc(torch.func.functional_call(self.module, replaced, (nchw(x),)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_norm_training(layout: str, seed: int, dtype: type) -> None:
    """Training normalises by the batch's own mean and biased variance, and the gradients
    flow through those statistics too."""
    rng = np.random.default_rng(seed)
    case = BatchNormCase.draw(layout, rng, dtype)
    case.module.train()
    check_layer(case.layer, case.batch(rng), case.torch_forward, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_norm_running_statistics(layout: str, seed: int, dtype: type) -> None:
    """Both keep running <- (1 - momentum) running + momentum batch with momentum 0.1 on
    the newest batch (torch's convention; Keras's 0.99 would weight the old average) and
    the running variance unbiased, n/(n-1) times the batch's: after each of three batches
    our buffers equal torch's."""
    rng = np.random.default_rng(seed)
    case = BatchNormCase.draw(layout, rng, dtype)
    case.module.train()
    for _ in range(3):
        x = case.batch(rng)
        case.layer.forward(x, training=True)
        with torch.no_grad():
            case.torch_forward(tensor(x))
        assert_matches(case.layer.running_mean, case.module.running_mean, dtype)
        assert_matches(case.layer.running_var, case.module.running_var, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_norm_inference(layout: str, seed: int, dtype: type) -> None:
    """At test time both normalise by the running statistics, and leave them alone."""
    rng = np.random.default_rng(seed)
    case = BatchNormCase.draw(layout, rng, dtype)
    case.module.eval()
    x = case.batch(rng)
    running = [case.layer.running_mean.copy(), case.layer.running_var.copy()]
    with torch.no_grad():
        expected = case.torch_forward(tensor(x))
    assert_matches(case.layer.forward(x, training=False), expected, dtype)
    np.testing.assert_array_equal(case.layer.running_mean, running[0])
    np.testing.assert_array_equal(case.layer.running_var, running[1])


# --- activations and costs ----------------------------------------------------------------

TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky-relu": functional.leaky_relu,  # torch's default slope 0.01 is ours too
    "softmax": lambda z: torch.softmax(z, dim=1),
    "linear": lambda z: z,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name: str, seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 11, size=2))
    check_layer(make_activation(name), draw(rng, shape, dtype) * 4, TORCH_ACTIVATIONS[name], rng)


def torch_cost(name: str, activation: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The cost ``name`` (mean over the batch, sum over the outputs) as torch writes it."""
    if name == "quadratic":  # 1/2 ||a - y||^2 per example
        act = TORCH_ACTIVATIONS[activation]
        return lambda z, y: functional.mse_loss(act(z), y, reduction="sum") / (2 * len(z))
    if name == "cross-entropy":  # torch's "mean" would divide by the outputs as well
        return lambda z, y: (
            functional.binary_cross_entropy_with_logits(z, y, reduction="sum") / len(z)
        )
    return lambda z, y: functional.cross_entropy(z, y.argmax(dim=1))  # -ln softmax(z)_y


#: Each cost with its output activation: the quadratic cost with any, the other two with
#: the one they own (sigmoid for cross-entropy, softmax for log-likelihood).
OWN_OUTPUT = {"cross-entropy": "sigmoid", "log-likelihood": "softmax"}
COSTS = [
    pytest.param(name, activation, id=f"{name}-{activation}")
    for name in get_args(CostName)
    for activation in ([OWN_OUTPUT[name]] if name in OWN_OUTPUT else sorted(ACTIVATIONS))
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "activation"), COSTS)
def test_cost(name: str, activation: str, seed: int, dtype: type) -> None:
    """The outputs ``a``, the cost's value and its output error ``delta`` = dC/dz."""
    rng = np.random.default_rng(seed)
    batch, classes = int(rng.integers(1, 7)), int(rng.integers(2, 11))
    z = draw(rng, (batch, classes), dtype) * 3
    y = np.eye(classes, dtype=dtype)[rng.integers(0, classes, batch)]
    cost = make_cost(name, make_activation(activation))
    z_t = leaf(z)
    value_t = torch_cost(name, activation)(z_t, tensor(y))
    value_t.backward()
    assert_matches(cost.output(z), TORCH_ACTIVATIONS[activation](z_t), dtype)
    assert_matches(cost.value(z, y), value_t, dtype)
    assert_matches(cost.delta(z, y), z_t.grad, dtype)


# --- optimisers ---------------------------------------------------------------------------

ETA, MOMENTUM, LMBDA, L1, N_TRAIN = 0.05, 0.9, 5.0, 2.0, 50


def torch_optimizer(
    name: str, weights: torch.Tensor, biases: torch.Tensor
) -> torch.optim.Optimizer:
    """torch.optim's counterpart of ours, with the book's L2 penalty (lambda/2n) sum w^2 on
    the weights only as torch's (coupled, not AdamW's decoupled) weight decay lambda/n."""
    groups = [
        {"params": [weights], "weight_decay": LMBDA / N_TRAIN},
        {"params": [biases], "weight_decay": 0.0},
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=ETA)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=ETA, momentum=MOMENTUM)
    return torch.optim.Adam(groups, lr=ETA)  # torch's defaults: betas 0.9, 0.999; eps 1e-8


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", get_args(OptimizerName))
def test_optimizer_steps(name: str, seed: int, dtype: type) -> None:
    """Three steps of each optimiser, with the book's penalties, against torch.optim.

    The mapping: our velocity v -> mu v - eta g, w -> w + v is torch's buffer b -> mu b + g,
    w -> w - eta b with v = -eta b (no dampening); the book's L2 is torch's weight decay
    lambda/n on the weights; torch has no L1 option, so its gradient (lambda_1/n) sgn(w)
    joins the weights' gradient.  Plain SGD receives its gradients already multiplied by
    eta (see ``SGD.gradient_scale``), as the trainer delivers them.

    Adam is the paper's "more efficient" ordering (Kingma & Ba, section 2): the bias
    corrections folded into the step size, w -> w - eta sqrt(1 - b2^t)/(1 - b1^t) m /
    (sqrt(v) + eps), where torch divides by sqrt(v / (1 - b2^t)) + eps.  The two agree
    exactly when torch's epsilon at step t is ours divided by sqrt(1 - b2^t): ours acts as
    torch's with an epsilon 32 times larger at the first step, shrinking to torch's own over
    the first few thousand, which only matters for gradients not far above it.
    """
    rng = np.random.default_rng(seed)
    inputs, outputs = rng.integers(1, 6, size=2)
    weights = Parameter(draw(rng, (inputs, outputs), dtype), regularize=True)
    biases = Parameter(draw(rng, (outputs,), dtype), regularize=False)
    optimizer = make_optimizer(name, [weights, biases], ETA, MOMENTUM, LMBDA, L1, N_TRAIN)
    weights_t, biases_t = leaf(weights.value), leaf(biases.value)
    optimizer_t = torch_optimizer(name, weights_t, biases_t)
    start = [weights.value.copy(), biases.value.copy()]

    for step in range(1, 4):
        grads = [draw(rng, weights.value.shape, dtype), draw(rng, biases.value.shape, dtype)]
        weights_t.grad = tensor(grads[0])
        weights_t.grad += torch.sign(weights_t.detach()) * (L1 / N_TRAIN)
        biases_t.grad = tensor(grads[1])
        if name == "adam":
            beta2, eps = optimizer_t.defaults["betas"][1], optimizer_t.defaults["eps"]
            for group in optimizer_t.param_groups:
                group["eps"] = eps / np.sqrt(1 - beta2**step)
        optimizer_t.step()
        for param, grad in zip((weights, biases), grads, strict=True):
            param.grad[...] = grad * dtype(optimizer.gradient_scale)
        optimizer.step()
        # the displacements, so that float32's rounding of w itself does not hide the step
        for param, param_t, initial in zip(
            (weights, biases), (weights_t, biases_t), start, strict=True
        ):
            assert_matches(param.value - initial, param_t - tensor(initial), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_penalty_is_the_books_regularisation_term(dtype: type) -> None:
    """The penalty the cost reports, (lambda/2n) sum w^2 + (lambda_1/n) sum |w| over the
    weights (never the biases), and the gradient the optimisers add for it: torch's
    autograd of the same expression."""
    rng = np.random.default_rng(0)
    weights = Parameter(draw(rng, (4, 3), dtype), regularize=True)
    biases = Parameter(draw(rng, (3,), dtype), regularize=False)
    optimizer = make_optimizer("sgd", [weights, biases], ETA, MOMENTUM, LMBDA, L1, N_TRAIN)
    weights_t = leaf(weights.value)
    penalty_t = LMBDA / (2 * N_TRAIN) * (weights_t**2).sum() + L1 / N_TRAIN * weights_t.abs().sum()
    penalty_t.backward()
    assert_matches(optimizer.penalty(), penalty_t, dtype)
    optimizer._add_penalty_gradient(weights, slice(None), 1.0)  # onto the weights' zero gradient
    assert_matches(weights.grad, weights_t.grad, dtype)
