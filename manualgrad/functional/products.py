"""Matrix products: forward, what is saved, and each operand's gradient, side by side.

Every op twins the ``torch`` function (and ``Tensor`` method) of the same name and signature:

===============  ============================================================================
op               twins
===============  ============================================================================
matmul           torch.matmul, Tensor.matmul, ``a @ b``; every rank case (1-d·1-d dot,
                 matrix·vector, vector·matrix, batched with broadcast batch dims)
mm, bmm          torch.mm / torch.bmm (ranks and batch sizes checked as torch)
addmm, baddbmm   torch.addmm / torch.baddbmm (``beta``, ``alpha``; HF ``Conv1D`` is addmm)
einsum           torch.einsum: equation + operands (or a list of them), or the sublist format;
                 ``...``, implicit output, broadcasting and summed-out letters; a letter
                 repeated within one operand (a diagonal) raises ``NotImplementedError``
outer (= ger)    torch.outer / torch.ger
===============  ============================================================================

For y = A·B with G = dL/dy:  dL/dA = G·Bᵀ,  dL/dB = Aᵀ·G — each gradient needs the *other*
operand, so each is saved only when the other operand needs a gradient. Vectors are treated as
1×k rows (left) or k×1 columns (right), batch dims broadcast and are summed back
(``sum_to_size``). Each gradient is again a product of ``grad`` with a saved operand, hence
differentiable (double backward = the same formulas). Complex operands are conjugated
(dL/dA = G·Bᴴ, torch's convention).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from numbers import Number

import torch
from torch import Tensor

from manualgrad.functional._function import Function, transforms_or_tracing
from manualgrad.functional.arithmetic import conj, reduce_to


def _as_matrices(
    input_shape: torch.Size, other_shape: torch.Size
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The shapes matmul computes with: a 1-d left operand as a (1, k) row, a 1-d right one as
    a (k, 1) column, and the product's shape with both kept (batch dims broadcast)."""
    left = tuple(input_shape) if len(input_shape) > 1 else (1, *input_shape)
    right = tuple(other_shape) if len(other_shape) > 1 else (*other_shape, 1)
    batch = torch.broadcast_shapes(left[:-2], right[:-2])
    return left, right, (*batch, left[-2], right[-1])


class MatmulFunction(Function):
    r"""Matrix product in every rank case of ``torch.matmul``.  y = A·B.

    With A as (…, n, k) (a vector: (1, k)), B as (…, k, m) (a vector: (k, 1)) and G = dL/dy
    reshaped to (…, n, m):
    Saved: B if A needs a gradient, A if B does.
    dL/dA = Σ_batch G·Bᵀ,   dL/dB = Σ_batch Aᵀ·G   (each reshaped back to its operand).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, other: Tensor) -> Tensor:
        return torch.matmul(input, other)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, other = inputs
        needs_input, needs_other = ctx.needs_input_grad
        ctx.shapes = (input.shape, other.shape)
        ctx.save_for_backward(input if needs_other else None, other if needs_input else None)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, other = ctx.saved_tensors
        needs_input, needs_other = ctx.needs_input_grad
        input_shape, other_shape = ctx.shapes
        left, right, product = _as_matrices(input_shape, other_shape)
        grad = grad.reshape(product)
        grad_input = grad_other = None
        if needs_input:
            grad_input = reduce_to(grad @ other.reshape(right).mH, left).reshape(input_shape)
        if needs_other:
            if len(right) == 2:  # no batch on B: one product over the flattened batch
                count = math.prod(product[:-1])
                rows = input.reshape(count, left[-1]).mH @ grad.reshape(count, product[-1])
            else:
                rows = reduce_to(input.reshape(left).mH @ grad, right)
            grad_other = rows.reshape(other_shape)
        return grad_input, grad_other


class AddmmFunction(Function):
    r"""y = β·C + α·A·B   (``addmm`` for matrices A, B; ``baddbmm`` for batches of them; C
    broadcasts to the product).

    Saved: B if A needs a gradient, A if B does (C is never saved).
    dL/dC = β · Σ_broadcast G,   dL/dA = α · G·Bᵀ,   dL/dB = α · Aᵀ·G   (G = dL/dy).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, mat1: Tensor, mat2: Tensor, beta: Number, alpha: Number) -> Tensor:
        product = torch.addmm if mat1.dim() == 2 else torch.baddbmm
        return product(input, mat1, mat2, beta=beta, alpha=alpha)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, mat1, mat2, ctx.beta, ctx.alpha = inputs
        _, needs1, needs2, _, _ = ctx.needs_input_grad
        ctx.input_shape = input.shape
        ctx.save_for_backward(mat1 if needs2 else None, mat2 if needs1 else None)

    @staticmethod
    def backward(ctx, grad: Tensor):
        mat1, mat2 = ctx.saved_tensors
        needs_input, needs1, needs2, _, _ = ctx.needs_input_grad
        grad_input = grad_mat1 = grad_mat2 = None
        if needs_input:
            grad_input = reduce_to(grad * conj(ctx.beta), ctx.input_shape)
        if needs1:
            grad_mat1 = (grad @ mat2.mH) * conj(ctx.alpha)
        if needs2:
            grad_mat2 = (mat1.mH @ grad) * conj(ctx.alpha)
        return grad_input, grad_mat1, grad_mat2, None, None


class OuterFunction(Function):
    r"""Outer product of vectors.  y_ij = a_i · b_j.

    Saved: b if a needs a gradient, a if b does.
    dL/da = G·b,   dL/db = Gᵀ·a   (G = dL/dy).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, vec2: Tensor) -> Tensor:
        return torch.outer(input, vec2)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, vec2 = inputs
        needs_input, needs_vec2 = ctx.needs_input_grad
        ctx.save_for_backward(input if needs_vec2 else None, vec2 if needs_input else None)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, vec2 = ctx.saved_tensors
        needs_input, needs_vec2 = ctx.needs_input_grad
        grad_input = grad @ vec2.conj() if needs_input else None
        grad_vec2 = grad.mT @ input.conj() if needs_vec2 else None
        return grad_input, grad_vec2


class EinsumFunction(Function):
    r"""Einstein summation  y[out] = Σ_{letters not in out} Π_k X_k[s_k]   (an equation without
    ``...`` and without a letter repeated inside one operand: :func:`einsum` rewrites the rest).

    y is linear in each operand, so dL/dX_k is the same sum with X_k replaced by G = dL/dy:
        dL/dX_k[s_k] = Σ G[out] · Π_{j≠k} X_j[s_j]  = einsum("out, s_j (j≠k) -> s_k'", G, X_j)
    where s_k' drops the letters that occur in X_k alone (summed inside X_k only: their
    gradient is the same for every index, so it is broadcast back), and size-1 letters that
    broadcast are summed back (``sum_to_size``). Under transforms (``torch.autograd.grad(...,
    is_grads_batched=True)`` included) that einsum is taken pair by pair as batched matrix
    products (:func:`_pairwise_einsum`), the same sum.
    Saved: every operand some *other* operand's gradient needs.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(equation: str, *operands: Tensor) -> Tensor:
        return torch.einsum(equation, *operands)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        equation, *operands = inputs
        needs = ctx.needs_input_grad[1:]
        ctx.equation = equation
        ctx.shapes = [operand.shape for operand in operands]
        ctx.save_for_backward(
            *(
                operand if any(n for j, n in enumerate(needs) if j != k) else None
                for k, operand in enumerate(operands)
            )
        )

    @staticmethod
    def backward(ctx, grad: Tensor):
        operands = ctx.saved_tensors
        terms, output = _split(ctx.equation)
        # aten::einsum has no batching rule in autograd's vmap (is_grads_batched): there the
        # same sums are taken as the matrix products torch.einsum decomposes into.
        product = _pairwise_einsum if transforms_or_tracing(grad) else torch.einsum
        grads = []
        for k, (term, shape) in enumerate(zip(terms, ctx.shapes, strict=True)):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            others = [(terms[j], operands[j]) for j in range(len(terms)) if j != k]
            seen = set(output).union(*(t for t, _ in others))
            kept = "".join(letter for letter in term if letter in seen)
            inner = ",".join([output, *(t for t, _ in others)])
            partial = product(f"{inner}->{kept}", grad, *(o.conj() for _, o in others))
            for position, letter in enumerate(term):
                if letter not in seen:
                    partial = partial.unsqueeze(position)
            grads.append(_broadcast_back(partial, shape))
        return None, *grads


def _pairwise_einsum(equation: str, *operands: Tensor) -> Tensor:
    """``torch.einsum`` of an explicit equation without repeated letters, contracted left to
    right one pair at a time as ``torch.einsum`` does (:func:`_contract_pair`), from ops that
    autograd's vmap can batch: sums, permutes, reshapes and ``bmm``."""
    terms, output = _split(equation)
    result, letters = operands[0], terms[0]
    for k in range(1, len(terms)):
        needed = set(output).union(*terms[k + 1 :])
        result, letters = _contract_pair(result, letters, operands[k], terms[k], needed)
    summed = [i for i, letter in enumerate(letters) if letter not in output]
    if summed:
        result = result.sum(summed)
        letters = "".join(letter for letter in letters if letter in output)
    return result.permute([letters.index(letter) for letter in output])


def _contract_pair(
    left: Tensor, left_letters: str, right: Tensor, right_letters: str, needed: set[str]
) -> tuple[Tensor, str]:
    """Σ over the letters not ``needed`` of left ∘ right (letters aligned by name, size-1 dims
    broadcast) as one ``bmm``: shared needed letters are its batch, shared unneeded ones its
    inner dim, each operand's own needed letters its rows and columns (own unneeded letters
    are summed first). Returns the product and its letters (batch, rows, columns)."""
    left, left_letters = _sum_letters(left, left_letters, needed | set(right_letters))
    right, right_letters = _sum_letters(right, right_letters, needed | set(left_letters))
    sizes = {}
    for tensor, letters in ((left, left_letters), (right, right_letters)):
        for letter, size in zip(letters, tensor.shape, strict=True):
            if sizes.get(letter, 1) == 1:  # a size-1 dim broadcasts (to 0 as well)
                sizes[letter] = size
    shared = [letter for letter in left_letters if letter in right_letters]
    batch = [letter for letter in shared if letter in needed]
    inner = [letter for letter in shared if letter not in needed]
    rows = [letter for letter in left_letters if letter not in shared]
    columns = [letter for letter in right_letters if letter not in shared]

    def as_batch_of_matrices(tensor: Tensor, letters: str, first: list, second: list) -> Tensor:
        order = [letters.index(letter) for letter in (*batch, *first, *second)]
        aligned = tensor.permute(order).expand([sizes[letters[i]] for i in order])
        counts = [math.prod(sizes[letter] for letter in group) for group in (batch, first, second)]
        return aligned.reshape(counts)

    product = torch.bmm(
        as_batch_of_matrices(left, left_letters, rows, inner),
        as_batch_of_matrices(right, right_letters, inner, columns),
    )
    letters = [*batch, *rows, *columns]
    return product.reshape([sizes[letter] for letter in letters]), "".join(letters)


def _sum_letters(tensor: Tensor, letters: str, kept: set[str]) -> tuple[Tensor, str]:
    """``tensor`` summed over its letters not in ``kept``, and the letters left."""
    summed = [i for i, letter in enumerate(letters) if letter not in kept]
    if not summed:
        return tensor, letters
    return tensor.sum(summed), "".join(letter for letter in letters if letter in kept)


def _broadcast_back(partial: Tensor, shape: torch.Size) -> Tensor:
    """``partial`` (one dim per letter of the operand) to the operand's ``shape``: summed over
    the size-1 dims the operand broadcast along, expanded over its summed-out letters."""
    pairs = zip(shape, partial.shape, strict=True)
    broadcast = [i for i, (s, p) in enumerate(pairs) if s == 1 and p != 1]
    if broadcast:
        partial = partial.sum(broadcast, keepdim=True)
    return partial.expand(shape)


def _split(equation: str) -> tuple[list[str], str]:
    """'ab,bc->ac' as (['ab', 'bc'], 'ac')."""
    inputs, output = equation.split("->")
    return inputs.split(","), output


_LETTERS = string.ascii_letters


def _sublist_equation(arguments: Sequence[object]) -> tuple[str, list[Tensor]]:
    """torch's sublist format einsum(X, [0, 1], Y, [1, 2], [0, 2]) as an equation string."""

    def term(sublist: Sequence[object]) -> str:
        return "".join("..." if index is Ellipsis else _LETTERS[index] for index in sublist)

    operands = list(arguments[0::2][: len(arguments) // 2])
    terms = [term(s) for s in arguments[1::2][: len(operands)]]
    output = f"->{term(arguments[-1])}" if len(arguments) % 2 else ""
    return ",".join(terms) + output, operands


def _explicit(equation: str, shapes: Sequence[torch.Size]) -> str:
    """The equation with ``...`` spelled out as letters it does not use (right-aligned across
    operands, as torch broadcasts them) and the output made explicit (implicit: the ``...``
    dims, then the letters used once, in alphabetical order)."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(
            f"einsum(): `equation` has {len(terms)} operands but {len(shapes)} were given"
        )
    letters = [letter for letter in _LETTERS if letter not in equation]
    ranks = [
        len(shape) - len(term.replace("...", "")) for term, shape in zip(terms, shapes, strict=True)
    ]
    width = max([rank for term, rank in zip(terms, ranks, strict=True) if "..." in term], default=0)
    block = "".join(letters[:width])
    terms = [
        term.replace("...", block[width - rank :] if rank else "")
        for term, rank in zip(terms, ranks, strict=True)
    ]
    if arrow:
        output = output.replace("...", block)
    else:
        counts = "".join(terms)
        named = sorted(c for c in set(counts) if counts.count(c) == 1 and c not in block)
        output = block + "".join(named)
    for term in terms:
        if len(set(term)) != len(term):
            raise NotImplementedError(
                f"einsum(): `equation` {equation!r} repeats a letter inside one operand "
                "(a diagonal); that case has no hand-derived backward"
            )
    return ",".join(terms) + "->" + output


def einsum(*args: object) -> Tensor:
    """``torch.einsum(equation, *operands)`` (operands also as one list, or the sublist format
    ``einsum(X, [0, 1], Y, [1, 2])``), hand-derived backward (:class:`EinsumFunction`)."""
    if args and isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    equation = _explicit(equation, [operand.shape for operand in operands])
    return EinsumFunction.apply(equation, *operands)


def matmul(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.matmul`` (every rank case), hand-derived backward (:class:`MatmulFunction`)."""
    if out is not None:
        return torch.matmul(input, other, out=out)
    return MatmulFunction.apply(input, other)


def _require_rank(op: str, name: str, tensor: Tensor, rank: int) -> None:
    """torch's RuntimeError for an operand of the wrong rank."""
    if tensor.dim() != rank:
        kind = "matrix" if rank == 2 else "3D tensor"
        raise RuntimeError(f"{op}: `{name}` must be a {kind}, got a {tensor.dim()}-d tensor")


def mm(input: Tensor, mat2: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.mm`` (2-d operands only), hand-derived backward (:class:`MatmulFunction`)."""
    _require_rank("mm", "input", input, 2)
    _require_rank("mm", "mat2", mat2, 2)
    return matmul(input, mat2, out=out)


def mv(input: Tensor, vec: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.mv`` (a matrix times a vector), hand-derived backward (:class:`MatmulFunction`)."""
    _require_rank("mv", "input", input, 2)
    if vec.dim() != 1:
        raise RuntimeError(f"mv: `vec` must be a vector, got a {vec.dim()}-d tensor")
    return matmul(input, vec, out=out)


def vdot(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.vdot`` (Σ conj(input) · other of two vectors; conj is a view, the identity on
    real tensors), hand-derived backward (:class:`MatmulFunction`)."""
    for name, tensor in (("input", input), ("other", other)):
        if tensor.dim() != 1:
            raise RuntimeError(f"vdot: `{name}` must be a vector, got a {tensor.dim()}-d tensor")
    return matmul(input.conj(), other, out=out)


def bmm(input: Tensor, mat2: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.bmm`` (3-d operands with equal batch sizes: no broadcasting), hand-derived
    backward (:class:`MatmulFunction`)."""
    _require_rank("bmm", "input", input, 3)
    _require_rank("bmm", "mat2", mat2, 3)
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm: `input` and `mat2` must have the same number of batches, got "
            f"{input.shape[0]} and {mat2.shape[0]}"
        )
    return matmul(input, mat2, out=out)


def addmm(
    input: Tensor,
    mat1: Tensor,
    mat2: Tensor,
    *,
    beta: Number = 1,
    alpha: Number = 1,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.addmm``: beta·input + alpha·mat1·mat2, hand-derived backward."""
    if out is not None:
        return torch.addmm(input, mat1, mat2, beta=beta, alpha=alpha, out=out)
    _require_rank("addmm", "mat1", mat1, 2)
    return AddmmFunction.apply(input, mat1, mat2, beta, alpha)


def baddbmm(
    input: Tensor,
    batch1: Tensor,
    batch2: Tensor,
    *,
    beta: Number = 1,
    alpha: Number = 1,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.baddbmm``: beta·input + alpha·batch1·batch2, hand-derived backward."""
    if out is not None:
        return torch.baddbmm(input, batch1, batch2, beta=beta, alpha=alpha, out=out)
    _require_rank("baddbmm", "batch1", batch1, 3)
    return AddmmFunction.apply(input, batch1, batch2, beta, alpha)


def outer(input: Tensor, vec2: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.outer``: input·vec2ᵀ for vectors, hand-derived backward."""
    if out is not None:
        return torch.outer(input, vec2, out=out)
    return OuterFunction.apply(input, vec2)


ger = outer

__all__ = [
    "AddmmFunction",
    "EinsumFunction",
    "MatmulFunction",
    "OuterFunction",
    "addmm",
    "baddbmm",
    "bmm",
    "einsum",
    "ger",
    "matmul",
    "mm",
    "mv",
    "outer",
    "vdot",
]
