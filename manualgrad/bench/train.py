"""``train`` suite: one full training step (zero_grad, forward, loss, backward, optimizer step)
of a manualgrad model and optimizer against its torch.nn + torch.optim twin.

Models:

- ``digits_mlp``: the default ``make train`` network (``TrainConfig`` defaults: the MLP, loss and
  optimizer of :mod:`manualgrad.train`) on a batch of scikit-learn digits; its twin is
  :func:`manualgrad.conversion.to_torch` of it with the same torch.optim class and
  hyper-parameters.
- ``cnn``: conv → batch-norm → ReLU → max-pool → conv → batch-norm → ReLU → avg-pool → linear on
  MNIST-shaped inputs, SGD with momentum; the manualgrad model is ``manualgrad.convert`` of the
  torch.nn one (strict: every layer swapped).
- ``gpt``: a nanoGPT-style stack (token + position embeddings, pre-norm blocks of causal
  self-attention and a GELU MLP, final layer norm) whose head and loss are one
  ``manualgrad.functional.linear_cross_entropy`` call with ``options`` (torch's switch to the
  chunked path that computes the gradients in the forward pass: a training step needs no double
  backward), AdamW. The native twin is the same torch.nn model with torch's SDPA at the same
  call, ``cross_entropy(linear(h, W))`` (torch's ``linear_cross_entropy`` with
  ``options=None``, its reference path) and torch.optim.AdamW (its CPU default, the for-loop).
- ``digits_mlp_compiled``: ``digits_mlp`` through :func:`manualgrad.compile` (Inductor; the
  quick smoke run uses the ``aot_eager`` backend) against the eager native twin, timed after the
  compiling warm-up.

One more row, ``make_train``, times a whole ``make train`` run rather than a step:
:class:`~manualgrad.train.trainer.Trainer` ``fit`` with the defaults (30 epochs; the quick
smoke run 1), TensorBoard logging, checkpoints and figures included, into a temporary log
directory, against the same trainer driving the torch twin (a subclass of ``Trainer`` that
swaps in the model and loss through :func:`~manualgrad.conversion.to_torch` and the torch.optim
class of the same name with the same hyper-parameters), in the bench's clock: is a whole
``make train`` run as fast as the same model trained in plain torch.

Both twins start from the same weights and batch; their first losses must agree, so the timing
compares equal computations. Rows: ``time`` (interleaved medians) and ``peak_bytes``
(:func:`manualgrad.bench.memory.peak_bytes` of one step after the warm-up that creates the
optimizer state).
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as TF
from torch import Tensor
from torch.nn import LinearCrossEntropyOptions

import manualgrad
import manualgrad.functional as mF
import manualgrad.nn as mnn
from manualgrad.bench.memory import peak_bytes
from manualgrad.bench.ops import compare
from manualgrad.bench.rows import Row

# Optimizer options that choose an implementation rather than the math; left at torch's default.
_IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")


@dataclass(frozen=True)
class Step:
    """A training step as a zero-argument call returning the loss; ``loss(model)`` runs the
    forward pass on the step's batch."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[torch.nn.Module], Tensor]

    def __call__(self) -> Tensor:
        """zero_grad, forward + loss, backward, optimizer step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def torch_optimizer(optimizer: torch.optim.Optimizer, params) -> torch.optim.Optimizer:
    """The torch.optim class of the same name with ``optimizer``'s hyper-parameters."""
    cls = getattr(torch.optim, type(optimizer).__name__)
    accepted = inspect.signature(cls).parameters
    kwargs = {
        key: value
        for key, value in optimizer.defaults.items()
        if key in accepted and key not in _IMPLEMENTATION_FLAGS
    }
    return cls(params, **kwargs)


def digits_mlp(quick: bool) -> tuple[Step, Step, str]:
    """The default ``make train`` MLP, loss and optimizer, and their torch twins."""
    from manualgrad.conversion import to_torch
    from manualgrad.train.config import TrainConfig
    from manualgrad.train.data import load_dataset
    from manualgrad.train.model import build_loss, build_mlp
    from manualgrad.train.optimizers import build_optimizer

    config = TrainConfig()
    data = load_dataset(config.dataset, seed=config.seed, val_fraction=config.val_fraction)
    device = torch.get_default_device()
    x = data.x_train[: config.batch_size].to(device)
    loss_fn, encode = build_loss(config.loss, data.num_classes)
    target = encode(data.y_train[: config.batch_size]).to(device)
    model = build_mlp(
        data.num_features, config.hidden, data.num_classes, config.activation, config.init
    ).to(device)
    native, native_loss = to_torch(model), to_torch(loss_fn)
    optimizer = build_optimizer(config, model.parameters())
    ours = Step(model, optimizer, batch_loss(loss_fn, x, target))
    theirs = Step(
        native,
        torch_optimizer(optimizer, native.parameters()),
        batch_loss(native_loss, x, target),
    )
    return ours, theirs, f"b{config.batch_size}"


def batch_loss(criterion: Callable, x: Tensor, target: Tensor) -> Callable:
    """``model ↦ criterion(model(x), target)``."""
    return lambda model: criterion(model(x), target)


def cnn_layers() -> torch.nn.Sequential:
    """The small torch.nn CNN (28×28 → 10 classes)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def cnn(quick: bool) -> tuple[Step, Step, str]:
    """The small CNN on a batch of MNIST-shaped inputs and its ``manualgrad.convert`` twin, SGD
    with momentum."""
    batch = 8 if quick else 64
    x, target = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    native = cnn_layers()
    ours = manualgrad.convert(native, strict=True, example_inputs=x)
    steps = []
    for model, optim, F in ((ours, manualgrad.optim, mF), (native, torch.optim, TF)):
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        steps.append(Step(model, optimizer, batch_loss(F.cross_entropy, x, target)))
    return steps[0], steps[1], f"28x28 b{batch}"


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the small GPT-style stack."""

    vocab: int = 8192
    context: int = 128
    width: int = 128
    heads: int = 4
    layers: int = 2
    batch: int = 8


class Block(torch.nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)), causal attention."""

    def __init__(self, nn: types.ModuleType, F: types.ModuleType, config: GPTConfig) -> None:
        super().__init__()
        width = config.width
        self.heads = config.heads
        self.attention = F.scaled_dot_product_attention
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        hidden = 4 * width
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:
        """One block on (B, T, C)."""
        batch, time, width = x.shape
        heads = [
            part.view(batch, time, self.heads, width // self.heads).transpose(1, 2)
            for part in self.qkv(self.ln1(x)).split(width, dim=-1)
        ]
        attended = self.attention(*heads, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, time, width))
        return x + self.mlp(self.ln2(x))


class GPT(torch.nn.Module):
    """Token + position embeddings, ``layers`` blocks, final norm, then ``head_loss``."""

    def __init__(
        self,
        nn: types.ModuleType,
        F: types.ModuleType,
        head_loss: Callable[[Tensor, Tensor, Tensor], Tensor],
        config: GPTConfig,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(config.vocab, config.width)
        self.positions = nn.Embedding(config.context, config.width)
        self.blocks = nn.Sequential(*(Block(nn, F, config) for _ in range(config.layers)))
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab, bias=False)
        self.head_loss = head_loss

    def forward(self, index: Tensor, target: Tensor) -> Tensor:
        """Mean next-token cross-entropy of ``index`` (B, T) against ``target`` (B, T)."""
        positions = torch.arange(index.shape[1], device=index.device)
        hidden = self.norm(self.blocks(self.tokens(index) + self.positions(positions)))
        return self.head_loss(hidden.flatten(0, 1), self.head.weight, target.flatten())


def unfused_linear_cross_entropy(input: Tensor, weight: Tensor, target: Tensor) -> Tensor:
    """``cross_entropy(linear(input, weight), target)``: the full logits matrix, torch's way."""
    return TF.cross_entropy(TF.linear(input, weight), target)


def chunked_linear_cross_entropy(input: Tensor, weight: Tensor, target: Tensor) -> Tensor:
    """manualgrad's ``linear_cross_entropy`` on its chunked path, gradients computed in forward."""
    return mF.linear_cross_entropy(input, weight, target, options=LinearCrossEntropyOptions())


def gpt(quick: bool) -> tuple[Step, Step, str]:
    """The GPT-style stack, fused head + loss (manualgrad) vs unfused (native), AdamW."""
    config = GPTConfig(vocab=1024, context=32, layers=1, batch=2) if quick else GPTConfig()
    shape = (config.batch, config.context)
    index, target = torch.randint(0, config.vocab, shape), torch.randint(0, config.vocab, shape)
    twins = (
        (mnn, mF, chunked_linear_cross_entropy, manualgrad.optim),
        (torch.nn, TF, unfused_linear_cross_entropy, torch.optim),
    )
    steps = []
    for nn, F, head_loss, optim in twins:
        model = GPT(nn, F, head_loss, config)
        optimizer = optim.AdamW(model.parameters(), lr=3e-4)
        steps.append(Step(model, optimizer, lambda model: model(index, target)))
    steps[0].model.load_state_dict(steps[1].model.state_dict())
    return steps[0], steps[1], f"T{config.context} b{config.batch} V{config.vocab}"


def digits_mlp_compiled(quick: bool) -> tuple[Step, Step, str]:
    """``digits_mlp`` with the manualgrad model compiled (Inductor; aot_eager when quick)."""
    ours, native, size = digits_mlp(quick)
    torch._dynamo.reset()
    compiled = manualgrad.compile(ours.model, backend="aot_eager" if quick else "inductor")
    return Step(compiled, ours.optimizer, ours.loss), native, size


MODELS: dict[str, Callable[[bool], tuple[Step, Step, str]]] = {
    "digits_mlp": digits_mlp,
    "cnn": cnn,
    "gpt": gpt,
    "digits_mlp_compiled": digits_mlp_compiled,
}
# Models whose peak memory is reported (a compiled model's peak is not seen by the dispatcher).
PEAK = ("digits_mlp", "cnn", "gpt")


def model_rows(name: str, quick: bool) -> list[Row]:
    """``time`` (and ``peak_bytes``) rows of one model's training step."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ours, native, size = MODELS[name](quick)
    torch.testing.assert_close(ours(), native(), rtol=1e-4, atol=1e-5)
    rows = [compare("train", name, size, {"manualgrad": ours, "native": native}, quick)]
    if name in PEAK:
        rows.append(Row("train", name, size, "peak_bytes", peak_bytes(ours), peak_bytes(native)))
    return rows


def _torch_twin_trainer() -> type:
    """``TorchTwinTrainer``, defined on first use (the trainer imports TensorBoard)."""
    from manualgrad.conversion import to_torch
    from manualgrad.train import distributed
    from manualgrad.train.diagnostics import ActivationMonitor
    from manualgrad.train.optimizers import build_scheduler
    from manualgrad.train.trainer import Trainer

    class TorchTwinTrainer(Trainer):
        """The trainer of ``make train`` driving the torch twin of its model, loss and
        optimizer (built from the same seed, so the run starts from the same weights)."""

        def __init__(self, config: object) -> None:
            super().__init__(config)
            self.model = to_torch(self.model)
            self.loss_fn = to_torch(self.loss_fn)
            native = torch_optimizer(self.optimizer, self.model.parameters())
            # the trainer reads two traits manualgrad's optimizers declare (an Adam-like step)
            traits = {"second_order": False, "closure_evaluations": 1}
            native.__class__ = type(type(native).__name__, (type(native),), traits)
            self.optimizer = native
            self.scheduler = build_scheduler(config, native)
            self.monitor = ActivationMonitor(self.model)
            self.network = distributed.wrap(self.model, self.ctx)

    return TorchTwinTrainer


def make_train_row(quick: bool) -> Row:
    """``make_train``: a whole ``Trainer.fit`` with the defaults (quick: one epoch), ours against
    the torch twin's, each into a fresh temporary log directory."""
    from manualgrad.train.config import TrainConfig
    from manualgrad.train.trainer import Trainer

    epochs = 1 if quick else TrainConfig().epochs

    def fit(trainer_class: type) -> Callable[[], None]:
        def run_once() -> None:
            with tempfile.TemporaryDirectory() as logdir:
                trainer_class(TrainConfig(epochs=epochs, logdir=logdir, quiet=True)).fit()

        return run_once

    candidates = {"manualgrad": fit(Trainer), "native": fit(_torch_twin_trainer())}
    return compare("train", "make_train", f"{epochs} epochs", candidates, quick)


def run(quick: bool) -> list[Row]:
    """Rows of every model in ``MODELS``, then the whole ``make train`` run; a model whose layers
    or optimizer manualgrad does not have (yet) is skipped with a note on stderr."""
    rows = []
    for name in MODELS:
        try:
            rows.extend(model_rows(name, quick))
        except (AttributeError, ImportError, NotImplementedError) as missing:
            print(f"bench train: skipped {name}: {missing}", file=sys.stderr)
    return [*rows, make_train_row(quick)]
