"""Registry entries (see manualgrad.testing.registry): losses.

Targets are arguments like any other: floating targets of mse/l1/huber/bce and class-probability
targets of cross_entropy are differentiated (torch differentiates them); class indices are
integers; hinge targets (±1 labels) and every class/element weight that torch refuses to
differentiate are marked constant. Weights are positional so the float32 tests cast them too.

A 'mean' over an empty batch is nan for torch and for us, but ``assert_close`` does not equate
nans: the empty samples use 'sum' here and tests/test_losses.py checks the empty means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as TF
from torch import Tensor

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor

REDUCTIONS = ("mean", "sum", "none")


def _weight(*shape: int, dtype: torch.dtype) -> Tensor:
    return tensor(*shape, dtype=dtype, low=0.2, high=2)


def _classes(*shape: int, n_classes: int, ignore: int | None = None) -> Tensor:
    """Random class indices; the first entry set to ``ignore`` when given."""
    target = torch.randint(n_classes, shape)
    if ignore is not None:
        target.view(-1)[0] = ignore
    return target


def _signs(*shape: int, dtype: torch.dtype) -> Tensor:
    return (torch.randint(2, shape) * 2 - 1).to(dtype)


# --------------------------------------------------------------------------- regression losses


def _regression_samples(
    trailing: Callable[[str, Tensor | None], tuple],
) -> Callable[[torch.dtype], Iterator[Sample]]:
    """Samples of ``op(input, target, *trailing(reduction, weight))`` for mse/l1/huber."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        def make(*shape: int, noncontiguous: bool = False) -> Tensor:
            return tensor(*shape, dtype=dtype, noncontiguous=noncontiguous)

        for reduction in REDUCTIONS:
            yield Sample(reduction, (make(3, 4), make(3, 4), *trailing(reduction, None)))
        for reduction in ("mean", "none"):
            weight = _weight(3, 4, dtype=dtype)
            yield Sample(
                f"weighted_{reduction}", (make(3, 4), make(3, 4), *trailing(reduction, weight))
            )
        yield Sample("broadcast_target", (make(3, 4), make(4), *trailing("mean", None)))
        yield Sample("broadcast_both", (make(3, 1), make(1, 4), *trailing("sum", None)))
        yield Sample("broadcast_input", (make(4), make(2, 4), *trailing("none", None)))
        yield Sample("empty", (make(0, 3), make(0, 3), *trailing("sum", None)))
        yield Sample("size1", (make(1), make(1), *trailing("mean", None)))
        yield Sample("scalar", (make(), make(), *trailing("mean", None)))
        yield Sample(
            "noncontiguous",
            (
                make(2, 3, 4, noncontiguous=True),
                make(2, 3, 4, noncontiguous=True),
                *trailing("none", None),
            ),
            noncontiguous_grad=True,
        )

    return samples


def _legacy_trailing(reduction: str, weight: Tensor | None) -> tuple:
    """mse_loss / l1_loss: (size_average, reduce, reduction[, weight])."""
    return (None, None, reduction) if weight is None else (None, None, reduction, weight)


def _legacy_samples(dtype: torch.dtype) -> Iterator[Sample]:
    yield from _regression_samples(_legacy_trailing)(dtype)
    yield Sample(
        "legacy_size_average_false",
        (tensor(3, 2, dtype=dtype), tensor(3, 2, dtype=dtype)),
        {"size_average": False},
    )


def _huber_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def trailing(reduction: str, weight: Tensor | None) -> tuple:
        return (reduction, 1.0) if weight is None else (reduction, 1.0, weight)

    yield from _regression_samples(trailing)(dtype)
    yield Sample("delta0.5", (tensor(4, 5, dtype=dtype), tensor(4, 5, dtype=dtype)), {"delta": 0.5})
    yield Sample(
        "delta3_sum",
        (tensor(4, 5, dtype=dtype), tensor(4, 5, dtype=dtype)),
        {"delta": 3.0, "reduction": "sum"},
    )


def _regression_errors(op: str) -> Callable[[], Iterator[ErrorCase]]:
    def errors() -> Iterator[ErrorCase]:
        x = torch.randn(3, 4)
        yield ErrorCase((x, x), {"reduction": "avg"}, ValueError, "avg is not a valid value")
        yield ErrorCase((x, torch.randn(2, 4)), {}, RuntimeError, "`target`")
        yield ErrorCase((x, x), {"weight": torch.ones(4)}, ValueError, "`weight`")
        if op == "huber":
            yield ErrorCase((x, x), {"delta": 0.0}, RuntimeError, "`delta`")

    return errors


# --------------------------------------------------------------------------------- hinge loss


def hinge_reference(
    input: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """The plain formula under autograd: reduce(clamp_min(margin − target·input, 0))."""
    loss = (margin - target * input).clamp_min(0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _hinge_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def sample(
        name: str, input: Tensor, target: Tensor, noncontiguous: bool = False, **kwargs: object
    ) -> Sample:
        return Sample(
            name, (input, target), kwargs, frozenset({1}), noncontiguous_grad=noncontiguous
        )

    for reduction in REDUCTIONS:
        yield sample(
            reduction, tensor(4, 3, dtype=dtype), _signs(4, 3, dtype=dtype), reduction=reduction
        )
    yield sample("margin0.5", tensor(4, 3, dtype=dtype), _signs(4, 3, dtype=dtype), margin=0.5)
    yield sample("broadcast", tensor(4, 3, dtype=dtype), _signs(4, 1, dtype=dtype))
    yield sample("empty", tensor(0, 3, dtype=dtype), _signs(0, 3, dtype=dtype), reduction="sum")
    yield sample("scalar", tensor(dtype=dtype), _signs(dtype=dtype))
    yield sample(
        "noncontiguous",
        tensor(2, 3, 4, dtype=dtype, noncontiguous=True),
        _signs(2, 3, 4, dtype=dtype),
        noncontiguous=True,
        reduction="none",
    )


def _hinge_errors() -> Iterator[ErrorCase]:
    x = torch.randn(3, 4)
    yield ErrorCase((x, torch.full((3, 4), 0.5)), {}, ValueError, "`target`")
    yield ErrorCase((x, torch.ones(3, 4)), {"reduction": "avg"}, ValueError, "not a valid value")
    yield ErrorCase((x, torch.ones(2, 4)), {}, RuntimeError, "`target`")


# -------------------------------------------------------------------------- multi margin loss


def _multi_margin_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def sample(name: str, input: Tensor, target: Tensor, *rest: object, **kw: object) -> Sample:
        return Sample(name, (input, target, *rest), kw, constant=frozenset({4}))

    x, target = tensor(4, 5, dtype=dtype), _classes(4, n_classes=5)
    yield sample("p1_mean", x, target)
    yield sample("p2_sum", x, target, 2, reduction="sum")
    yield sample("p1_none_weighted", x, target, 1, 1.0, _weight(5, dtype=dtype), reduction="none")
    yield sample("p2_margin0.5_weighted", x, target, 2, 0.5, _weight(5, dtype=dtype))
    yield sample("vector_input", tensor(5, dtype=dtype), torch.tensor(3))
    # 'none': torch's mean/sum of an empty batch is an uninitialised scalar (tests/test_losses.py)
    yield sample(
        "empty_batch", tensor(0, 5, dtype=dtype), _classes(0, n_classes=5), reduction="none"
    )
    yield sample("size1", tensor(1, 1, dtype=dtype), torch.tensor([0]))
    yield sample(
        "noncontiguous",
        tensor(4, 3, dtype=dtype, noncontiguous=True),
        _classes(4, n_classes=3),
        2,
        reduction="none",
    )


def _multi_margin_errors() -> Iterator[ErrorCase]:
    x, target = torch.randn(3, 5), torch.tensor([0, 2, 4])
    yield ErrorCase((x, target), {"p": 3}, ValueError, "`p`")
    yield ErrorCase((x, torch.tensor([0, 5, 1])), {}, RuntimeError, "`target` out of range")
    yield ErrorCase((x, target.float()), {}, RuntimeError, "`target`")
    yield ErrorCase((x, torch.tensor([0, 1])), {}, RuntimeError, "`target`")
    yield ErrorCase((x, target), {"weight": torch.ones(5, 1)}, ValueError, "`weight`")
    yield ErrorCase((x, target), {"weight": torch.ones(4)}, RuntimeError, "`weight`")
    yield ErrorCase((torch.randn(2, 3, 4), target), {}, RuntimeError, "`input`")
    yield ErrorCase((x, target), {"reduction": "avg"}, ValueError, "not a valid value")


# ---------------------------------------------------------------- cross-entropy, nll (indices)


def _class_index_samples(smoothing: bool) -> Callable[[torch.dtype], Iterator[Sample]]:
    """(input, target, weight, size_average, ignore_index, reduce, reduction[, smoothing])."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        def sample(
            name: str,
            input: Tensor,
            target: Tensor,
            weight: Tensor | None = None,
            ignore_index: int = -100,
            reduction: str = "mean",
            label_smoothing: float = 0.0,
            noncontiguous_grad: bool = False,
        ) -> Sample:
            args = (input, target, weight, None, ignore_index, None, reduction)
            if smoothing:
                args = (*args, label_smoothing)
            return Sample(
                name, args, constant=frozenset({2}), noncontiguous_grad=noncontiguous_grad
            )

        x = tensor(4, 5, dtype=dtype)
        target = _classes(4, n_classes=5)
        for reduction in REDUCTIONS:
            yield sample(reduction, x, target, reduction=reduction)
        yield sample("weighted", x, target, _weight(5, dtype=dtype))
        yield sample(
            "ignored_weighted", x, _classes(4, n_classes=5, ignore=-100), _weight(5, dtype=dtype)
        )
        yield sample(
            "ignore_index1_none",
            x,
            torch.tensor([1, 0, 1, 3]),
            ignore_index=1,
            reduction="none",
        )
        if smoothing:
            yield sample("smoothing0.2", x, target, label_smoothing=0.2)
            yield sample(
                "smoothing_weighted_ignored_sum",
                x,
                _classes(4, n_classes=5, ignore=-100),
                _weight(5, dtype=dtype),
                reduction="sum",
                label_smoothing=0.3,
            )
            yield sample(
                "smoothing_kdim_none",
                tensor(2, 3, 2, 2, dtype=dtype),
                _classes(2, 2, 2, n_classes=3, ignore=-100),
                reduction="none",
                label_smoothing=0.1,
            )
        yield sample("kdim2", tensor(2, 3, 2, 2, dtype=dtype), _classes(2, 2, 2, n_classes=3))
        yield sample(
            "kdim1_weighted_ignored",
            tensor(2, 3, 4, dtype=dtype),
            _classes(2, 4, n_classes=3, ignore=-100),
            _weight(3, dtype=dtype),
        )
        yield sample(
            "kdim3_none",
            tensor(2, 3, 2, 1, 2, dtype=dtype),
            _classes(2, 2, 1, 2, n_classes=3),
            reduction="none",
        )
        yield sample("unbatched", tensor(5, dtype=dtype), torch.tensor(2))
        yield sample(
            "unbatched_none_weighted",
            tensor(5, dtype=dtype),
            torch.tensor(4),
            _weight(5, dtype=dtype),
            reduction="none",
        )
        yield sample(
            "empty_batch_sum", tensor(0, 5, dtype=dtype), _classes(0, n_classes=5), reduction="sum"
        )
        yield sample(
            "empty_batch_none",
            tensor(0, 5, dtype=dtype),
            _classes(0, n_classes=5),
            reduction="none",
        )
        yield sample("size1", tensor(1, 1, dtype=dtype), torch.tensor([0]))
        yield sample(
            "noncontiguous",
            tensor(5, 4, dtype=dtype, noncontiguous=True),
            _classes(5, n_classes=4),
            reduction="none",
        )
        yield sample(
            "noncontiguous_kdim",
            tensor(2, 3, 4, dtype=dtype, noncontiguous=True),
            _classes(2, 4, n_classes=3),
            reduction="none",
            noncontiguous_grad=True,
        )

    return samples


def _class_index_errors(op: str) -> Callable[[], Iterator[ErrorCase]]:
    def errors() -> Iterator[ErrorCase]:
        x, target = torch.randn(3, 5), torch.tensor([0, 2, 4])
        yield ErrorCase((x, target.float()), {}, RuntimeError, "`target` dtype")
        yield ErrorCase((x, target.int()), {}, RuntimeError, "`target` dtype")
        yield ErrorCase((x, torch.tensor([0, 5, 1])), {}, IndexError, "Target 5 is out of bounds")
        yield ErrorCase((x, torch.tensor([0, -1, 1])), {}, IndexError, "Target -1 is out of")
        yield ErrorCase(
            (torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 3)),
            {},
            IndexError,
            "Target 3 is out of bounds",
        )
        yield ErrorCase((x, torch.tensor([0, 1])), {}, ValueError, "batch_size")
        yield ErrorCase(
            (torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long)),
            {},
            RuntimeError,
            "`target` size",
        )
        yield ErrorCase((x, torch.zeros(3, 2, dtype=torch.long)), {}, RuntimeError, "`target`")
        yield ErrorCase((x, target), {"weight": torch.ones(4)}, RuntimeError, "`weight`")
        yield ErrorCase(
            (x, target), {"weight": torch.ones(5, dtype=torch.float64)}, RuntimeError, "`weight`"
        )
        yield ErrorCase(
            (x, target), {"weight": torch.ones(5, requires_grad=True)}, RuntimeError, "'weight'"
        )
        yield ErrorCase((x, target), {"reduction": "avg"}, ValueError, "avg is not a valid value")
        if op == "cross_entropy":
            yield ErrorCase(
                (x, target), {"label_smoothing": 1.5}, RuntimeError, "`label_smoothing`"
            )
            yield ErrorCase(
                (x, torch.rand(3, 5)), {"ignore_index": 1}, RuntimeError, "`ignore_index`"
            )
            yield ErrorCase((x, torch.ones(3, 5, dtype=torch.long)), {}, RuntimeError, "`target`")
            yield ErrorCase(
                (x, torch.rand(3, 5)), {"weight": torch.ones(4)}, RuntimeError, "`weight`"
            )
        else:
            yield ErrorCase((torch.tensor(1.0), torch.tensor(0)), {}, ValueError, "`input`")

    return errors


# ------------------------------------------------------------ cross-entropy (probabilities)


def _probability_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """(input, target, weight, size_average, ignore_index, reduce, reduction, smoothing)."""

    def sample(
        name: str,
        shape: tuple[int, ...],
        weight: Tensor | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        noncontiguous: bool = False,
        data_target: bool = False,
    ) -> Sample:
        input = tensor(*shape, dtype=dtype, noncontiguous=noncontiguous)
        target = tensor(*shape, dtype=dtype, low=0, high=1)
        args = (input, target, weight, None, -100, None, reduction, label_smoothing)
        constant = frozenset({1, 2} if data_target else {2})
        return Sample(name, args, constant=constant, noncontiguous_grad=noncontiguous)

    for reduction in REDUCTIONS:
        yield sample(reduction, (4, 5), reduction=reduction)
    yield sample("weighted", (4, 5), _weight(5, dtype=dtype))
    yield sample("smoothing0.2", (4, 5), label_smoothing=0.2)
    yield sample("smoothing_weighted_none", (4, 5), _weight(5, dtype=dtype), "none", 0.3)
    yield sample("kdim", (2, 3, 2), _weight(3, dtype=dtype))
    yield sample("kdim_none", (2, 3, 2, 2), reduction="none")
    yield sample("unbatched", (5,))
    yield sample("empty_batch_sum", (0, 5), reduction="sum")
    yield sample("noncontiguous", (2, 3, 4), reduction="none", noncontiguous=True)
    # targets as data (no gradient), as in training
    yield sample("data_target", (4, 5), data_target=True)
    yield sample(
        "data_target_weighted_smoothing_none",
        (4, 5),
        _weight(5, dtype=dtype),
        "none",
        0.2,
        data_target=True,
    )


# ---------------------------------------------------------------------------------------- bce


def _bce_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """(input, target, weight, size_average, reduce, reduction, pos_weight)."""

    def sample(
        name: str,
        shape: tuple[int, ...],
        weight: Tensor | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
        noncontiguous: bool = False,
        data_target: bool = False,
    ) -> Sample:
        input = tensor(*shape, dtype=dtype, low=-4, high=4, noncontiguous=noncontiguous)
        target = tensor(*shape, dtype=dtype, low=0, high=1)
        args = (input, target, weight, None, None, reduction, pos_weight)
        constant = frozenset({1, 2, 6} if data_target else {2, 6})
        return Sample(name, args, constant=constant, noncontiguous_grad=noncontiguous)

    for reduction in REDUCTIONS:
        yield sample(reduction, (4, 3), reduction=reduction)
    yield sample(
        "weight_pos_weight", (4, 3), _weight(3, dtype=dtype), "mean", _weight(3, dtype=dtype)
    )
    yield sample("pos_weight_none", (4, 3), reduction="none", pos_weight=_weight(3, dtype=dtype))
    yield sample("weight_full_sum", (4, 3), _weight(4, 3, dtype=dtype), "sum")
    yield sample("kdim_pos_weight", (2, 3, 4), pos_weight=_weight(3, 1, dtype=dtype))
    yield sample("empty_sum", (0, 3), reduction="sum")
    yield sample("scalar", ())
    yield sample("noncontiguous", (2, 3, 4), reduction="none", noncontiguous=True)
    # targets as data (no gradient), as in training
    yield sample("data_target", (4, 3), data_target=True)
    yield sample(
        "data_target_weight_pos_weight_none",
        (2, 3, 4),
        _weight(3, 1, dtype=dtype),
        "none",
        _weight(4, dtype=dtype),
        data_target=True,
    )


def _bce_errors() -> Iterator[ErrorCase]:
    x, target = torch.randn(3, 4), torch.rand(3, 4)
    yield ErrorCase((x, torch.rand(3, 5)), {}, ValueError, "Target size")
    yield ErrorCase((x, target), {"reduction": "avg"}, ValueError, "avg is not a valid value")
    yield ErrorCase((x, target), {"weight": torch.ones(5)}, RuntimeError, "`weight`")
    yield ErrorCase((x, target), {"pos_weight": torch.ones(2, 3, 4)}, RuntimeError, "`pos_weight`")
    yield ErrorCase(
        (x, target), {"pos_weight": torch.ones(4, requires_grad=True)}, RuntimeError, "'pos_weight'"
    )
    yield ErrorCase((x, torch.ones(3, 4, dtype=torch.long)), {}, RuntimeError, "`target`")


OPS = [
    OpInfo(
        "mse_loss",
        F.mse_loss,
        TF.mse_loss,
        F.MSELossFunction,
        _legacy_samples,
        _regression_errors("mse"),
        compile=True,
    ),
    OpInfo(
        "l1_loss",
        F.l1_loss,
        TF.l1_loss,
        F.L1LossFunction,
        _legacy_samples,
        _regression_errors("l1"),
    ),
    OpInfo(
        "huber_loss",
        F.huber_loss,
        TF.huber_loss,
        F.HuberLossFunction,
        _huber_samples,
        _regression_errors("huber"),
    ),
    OpInfo(
        "hinge_loss",
        F.hinge_loss,
        hinge_reference,
        F.HingeLossFunction,
        _hinge_samples,
        _hinge_errors,
    ),
    OpInfo(
        "multi_margin_loss",
        F.multi_margin_loss,
        TF.multi_margin_loss,
        F.MultiMarginLossFunction,
        _multi_margin_samples,
        _multi_margin_errors,
    ),
    OpInfo(
        "cross_entropy",
        F.cross_entropy,
        TF.cross_entropy,
        F.CrossEntropyFunction,
        _class_index_samples(smoothing=True),
        _class_index_errors("cross_entropy"),
        compile=True,
    ),
    OpInfo(
        "cross_entropy_probabilities",
        F.cross_entropy,
        TF.cross_entropy,
        F.CrossEntropyProbsFunction,
        _probability_samples,
    ),
    OpInfo(
        "nll_loss",
        F.nll_loss,
        TF.nll_loss,
        F.NLLLossFunction,
        _class_index_samples(smoothing=False),
        _class_index_errors("nll_loss"),
    ),
    OpInfo(
        "binary_cross_entropy_with_logits",
        F.binary_cross_entropy_with_logits,
        TF.binary_cross_entropy_with_logits,
        F.BCEWithLogitsFunction,
        _bce_samples,
        _bce_errors,
    ),
]


# ------------------------------------------------------------------------------------ modules

_CLASS_WEIGHT = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.8])


class HingeLoss(torch.nn.modules.loss._Loss):
    """Reference twin of :class:`manualgrad.nn.HingeLoss`: the plain formula under autograd."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the plain formula."""
        return hinge_reference(input, target, self.margin, self.reduction)


def _pair_inputs(kwargs: dict, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return tensor(4, 3, dtype=dtype), tensor(4, 3, dtype=dtype)


def _class_inputs(kwargs: dict, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return tensor(4, 5, dtype=dtype), torch.tensor([1, 0, 4, 1])


MODULES = [
    ModuleInfo(
        "MSELoss",
        mnn.MSELoss,
        torch.nn.MSELoss,
        [{}, {"reduction": "sum"}, {"reduction": "none"}],
        _pair_inputs,
    ),
    ModuleInfo("L1Loss", mnn.L1Loss, torch.nn.L1Loss, [{}, {"reduction": "none"}], _pair_inputs),
    ModuleInfo(
        "HuberLoss",
        mnn.HuberLoss,
        torch.nn.HuberLoss,
        [{}, {"delta": 0.5, "reduction": "sum"}],
        _pair_inputs,
    ),
    ModuleInfo(
        "HingeLoss",
        mnn.HingeLoss,
        HingeLoss,
        [{}, {"margin": 0.5, "reduction": "none"}],
        lambda kwargs, dtype: (tensor(4, 3, dtype=dtype), _signs(4, 3, dtype=dtype)),
    ),
    ModuleInfo(
        "MultiMarginLoss",
        mnn.MultiMarginLoss,
        torch.nn.MultiMarginLoss,
        [{}, {"p": 2, "margin": 0.5}, {"weight": _CLASS_WEIGHT, "reduction": "none"}],
        _class_inputs,
    ),
    ModuleInfo(
        "CrossEntropyLoss",
        mnn.CrossEntropyLoss,
        torch.nn.CrossEntropyLoss,
        [
            {},
            {"weight": _CLASS_WEIGHT, "ignore_index": 1, "label_smoothing": 0.1},
            {"reduction": "none"},
        ],
        _class_inputs,
    ),
    ModuleInfo(
        "NLLLoss",
        mnn.NLLLoss,
        torch.nn.NLLLoss,
        [{}, {"weight": _CLASS_WEIGHT, "ignore_index": 0, "reduction": "sum"}],
        _class_inputs,
    ),
    ModuleInfo(
        "BCEWithLogitsLoss",
        mnn.BCEWithLogitsLoss,
        torch.nn.BCEWithLogitsLoss,
        [
            {},
            {"weight": torch.tensor([0.5, 1.0, 2.0]), "pos_weight": torch.tensor([2.0, 1.0, 0.5])},
            {"reduction": "none"},
        ],
        lambda kwargs, dtype: (tensor(4, 3, dtype=dtype), tensor(4, 3, dtype=dtype, low=0, high=1)),
    ),
]
