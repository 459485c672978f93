"""Second-order methods torch.optim lacks: Newton (dense Hessian) and Hessian-free (truncated CG).

Both need curvature, which they get from Hessian-vector products: with g = ∇f built with
``create_graph=True``, H·v = ∇(gᵀv) is one more backward pass through g's graph (Pearlmutter,
"Fast Exact Multiplication by the Hessian", Neural Computation 6, 1994). The layers' backward
passes are themselves differentiable, so this double backward runs through manualgrad's own
hand-written gradients.

Closures: ``step(closure)`` calls the closure, which re-evaluates the model and returns the loss
*without* calling ``backward()`` (the optimizer differentiates the returned loss twice itself; a
closure that already ran ``backward()`` has freed the graph and is reported as such). Line-search
trials call the closure again under ``torch.no_grad()``. After ``step``, ``p.grad`` holds ∇f at
the point where the step started, for logging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from tqdm import tqdm

from ._base import (
    Closure,
    Traits,
    check_lr,
    check_non_negative,
    check_single_group,
    require,
    scalar,
)
from ._line_search import backtracking

LINE_SEARCHES = (None, "backtracking")


def flat_gradient(loss: Tensor, params: list[Tensor]) -> Tensor:
    """g = ∇f as one flat vector, with its graph kept for Hessian-vector products."""
    try:
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    except RuntimeError as error:
        if "second time" not in str(error):
            raise
        raise RuntimeError(
            "the closure must return the loss without calling backward(): second-order "
            "optimizers differentiate the loss twice themselves"
        ) from error
    return _flat(grads, params)


def hessian_vector_product(flat_grad: Tensor, params: list[Tensor], vector: Tensor) -> Tensor:
    """H·v = ∇(gᵀv), one backward pass through the graph of ``flat_grad`` (which is kept)."""
    if not flat_grad.requires_grad:  # the gradient does not depend on θ: f is affine, H = 0
        return torch.zeros_like(vector)
    parts = torch.autograd.grad(
        flat_grad, params, grad_outputs=vector, retain_graph=True, allow_unused=True
    )
    return _flat(parts, params)


def _flat(parts: tuple[Tensor | None, ...], params: list[Tensor]) -> Tensor:
    return torch.cat(
        [
            (torch.zeros_like(p) if part is None else part).reshape(-1)
            for part, p in zip(parts, params, strict=True)
        ]
    )


HVP_CHUNK = 64  # Hessian rows per batched product (vmap over one backward through g's graph)
PROGRESS_MIN = 2048  # a progress bar (on a terminal) for Hessians with at least this many rows
SYMMETRIZE_BLOCK = 1024


def dense_hessian(flat_grad: Tensor, params: list[Tensor]) -> Tensor:
    """H with H[i] = H·eᵢ, symmetrized: (H + Hᵀ)/2.

    The n Hessian-vector products run ``HVP_CHUNK`` at a time, batched by ``torch.func.vmap``
    over the backward of g's graph (our own double backward), each chunk written straight into
    the one n×n result; the symmetrization works in place block by block. Peak memory: H plus
    one chunk's products. Large Hessians show a progress bar on a terminal."""
    n = flat_grad.numel()
    hessian = flat_grad.new_empty(n, n)
    if not flat_grad.requires_grad:  # the gradient does not depend on θ: f is affine, H = 0
        return hessian.zero_()

    def products(vector: Tensor) -> Tensor:
        parts = torch.autograd.grad(
            flat_grad, params, grad_outputs=vector, retain_graph=True, allow_unused=True
        )
        return _flat(parts, params)

    batched = torch.func.vmap(products)
    starts = range(0, n, HVP_CHUNK)
    bar = tqdm(
        starts,
        desc=f"Hessian {n}x{n}",
        unit="rows",
        unit_scale=HVP_CHUNK,
        leave=False,
        disable=True if n < PROGRESS_MIN else None,  # None: only on a terminal
    )
    for start in bar:
        rows = min(HVP_CHUNK, n - start)
        basis = flat_grad.new_zeros(rows, n)
        basis[torch.arange(rows), torch.arange(start, start + rows)] = 1
        hessian[start : start + rows] = batched(basis)
        del basis
    for i in range(0, n, SYMMETRIZE_BLOCK):
        for j in range(i, n, SYMMETRIZE_BLOCK):
            upper = hessian[i : i + SYMMETRIZE_BLOCK, j : j + SYMMETRIZE_BLOCK]
            lower = hessian[j : j + SYMMETRIZE_BLOCK, i : i + SYMMETRIZE_BLOCK]
            mean = (upper + lower.T) / 2
            upper.copy_(mean)
            lower.copy_(mean.T)
    return hessian


def newton_direction(hessian: Tensor, grad: Tensor, damping: float) -> tuple[Tensor, float]:
    r"""Solve (H + τI)·d = −g by Cholesky, with τ ≥ damping just large enough for H + τI ≻ 0.

    τ starts at ``damping``; while the Cholesky factorization fails (H + τI not positive
    definite) it grows as τ ← max(2τ, β), β = 10⁻³·max(1, maxᵢ|Hᵢᵢ|) (Nocedal & Wright,
    Algorithm 3.3, "Cholesky with added multiple of the identity"). A positive definite
    H + τI makes d a descent direction: gᵀd = −gᵀ(H + τI)⁻¹g < 0. Returns (d, τ).
    """
    floor = 1e-3 * max(1.0, hessian.diagonal().abs().max().item()) if grad.numel() else 1.0
    tau = damping
    # H + τI, factored in place: one n×n buffer for every τ tried
    factor = torch.empty_like(hessian)
    info = torch.empty((), dtype=torch.int32, device=hessian.device)
    for _ in range(128):
        factor.copy_(hessian).diagonal().add_(tau)
        torch.linalg.cholesky_ex(factor, out=(factor, info))
        if info.item() == 0:
            direction = torch.cholesky_solve(-grad.unsqueeze(1), factor).squeeze(1)
            return direction, tau
        tau = max(2 * tau, floor)
    raise RuntimeError("Newton: the Hessian has no positive definite shift (non-finite values?)")


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, max_iter: int, tol: float
) -> tuple[Tensor, int]:
    r"""Truncated CG for A·x = b from x₀ = 0 (A symmetric, given only through ``matvec``).

        r ← b, p ← r
        repeat:  α ← rᵀr / pᵀAp;  x ← x + α·p;  r ← r − α·Ap
                 p ← r + (r_newᵀr_new / rᵀr)·p
        until ‖r‖ ≤ tol·‖b‖ or ``max_iter`` products

    Negative or zero curvature pᵀAp ≤ 0 ends the run: x so far is returned, or b itself (the
    steepest-descent direction) if it happens on the first product (Steihaug; Martens 2010).
    Returns (x, number of products).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = r.dot(r).item()
    threshold = (tol * b.norm().item()) ** 2
    if rs <= threshold:
        return x, 0
    for k in range(1, max_iter + 1):
        ap = matvec(p)
        curvature = p.dot(ap).item()
        if curvature <= 0:
            return (b.clone() if k == 1 else x), k
        alpha = rs / curvature
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        rs_new = r.dot(r).item()
        if rs_new <= threshold:
            return x, k
        p.mul_(rs_new / rs).add_(r)
        rs = rs_new
    return x, max_iter


class _ClosureSecondOrder(Traits, Optimizer, abstract=True):
    """One parameter group, a closure, a search direction, an optional backtracking search."""

    second_order = True
    closure_evaluations = None  # one, plus one per line-search trial

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        check_lr(defaults["lr"])
        check_non_negative(damping=defaults["damping"])
        require(
            defaults["line_search_fn"] in LINE_SEARCHES,
            f"line_search_fn must be None or 'backtracking', got {defaults['line_search_fn']!r}",
        )
        super().__init__(params, defaults)
        name = type(self).__name__
        if len(self.param_groups) != 1:
            raise ValueError(f"{name} doesn't support per-parameter options (parameter groups)")
        self._params: list[Tensor] = self.param_groups[0]["params"]
        if any(p.is_complex() for p in self._params):
            raise ValueError(f"{name} supports real parameters only")

    def _direction(self, flat_grad: Tensor, state: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def _set(self, origin: list[Tensor], t: float, direction: Tensor) -> None:
        """θ ← origin + t·d."""
        offset = 0
        for p, p0 in zip(self._params, origin, strict=True):
            numel = p.numel()
            p.copy_(p0).add_(direction[offset : offset + numel].view_as(p), alpha=t)
            offset += numel

    @torch.no_grad()
    def step(self, closure: Closure) -> Any:  # type: ignore[override]
        """Take one step along the second-order direction; returns the loss before it.

        Args:
            closure (Callable): re-evaluates the model and returns the loss, without calling
                ``backward()``.
        """
        check_single_group(self)
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        state.setdefault("func_evals", 0)
        with torch.enable_grad():
            loss = closure()
            if not (isinstance(loss, Tensor) and loss.requires_grad):
                raise RuntimeError(
                    f"{type(self).__name__}: the closure must return a loss tensor that "
                    "requires grad (built from the parameters, without calling backward())"
                )
            flat_grad = flat_gradient(loss, self._params)
            direction = self._direction(flat_grad, state)
        grad = flat_grad.detach()
        offset = 0
        for p in self._params:
            p.grad = grad[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        del flat_grad  # frees the graph of g

        lr = scalar(group["lr"], "lr")
        origin = [p.clone() for p in self._params]
        evals = 1
        if group["line_search_fn"] == "backtracking":

            def loss_at(t: float) -> float:
                self._set(origin, t, direction)
                return float(closure())

            t, _, searched = backtracking(loss_at, float(loss), grad.dot(direction).item(), t=lr)
            evals += searched
        else:
            t = lr
        self._set(origin, t, direction)
        state["n_iter"] += 1
        state["func_evals"] += evals
        state["step_size"] = t
        return loss


class Newton(_ClosureSecondOrder):
    r"""Damped Newton's method with the exact Hessian, assembled from Hessian-vector products.

    Algorithm (γ lr, λ damping), one iteration per ``step(closure)``::

        g ← ∇f(θ);  H ← [H·e₁ … H·eₙ]  (n Hessian-vector products, symmetrized)
        τ ← λ, doubled until H + τI is positive definite (Cholesky succeeds)
        d ← −(H + τI)⁻¹·g                  (Cholesky solve)
        t ← γ                               (line_search_fn=None)
        t ← γ, γ/2, γ/4, … until f(θ + t·d) ≤ f(θ) + 10⁻⁴·t·gᵀd   ('backtracking', Armijo)
        θ ← θ + t·d

    Near a minimum with H ≻ 0 (and λ small) the convergence is quadratic; the shift τ and the
    line search make it a descent method from anywhere. Costs per step: n Hessian-vector
    products, O(n²) memory and an O(n³) factorization, hence the ``max_params`` guard; use
    :class:`HessianFree` beyond it.

    References: Nocedal & Wright, "Numerical Optimization" (2006), ch. 3.3–3.4 (Newton with
    Hessian modification, backtracking); Pearlmutter (1994) for Hessian-vector products.

    Args:
        params: iterable of real parameters (a single group).
        lr: γ, the step length, or the first trial of the line search (default: 1.0).
        damping: λ, the Levenberg–Marquardt shift added to H (default: 1e-4).
        line_search_fn: ``None`` or ``"backtracking"`` (default: None).
        max_params: largest number of scalar parameters accepted (default: 10 000).

    State (on the first parameter): ``n_iter``, ``func_evals``, ``step_size`` (the last t) and
    ``damping`` (the last τ). See the module docstring for the closure contract.
    """

    default_lr = 1.0  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1.0,
        damping: float = 1e-4,
        line_search_fn: str | None = None,
        max_params: int = 10_000,
    ) -> None:
        defaults = {
            "lr": lr,
            "damping": damping,
            "line_search_fn": line_search_fn,
            "max_params": max_params,
        }
        super().__init__(params, defaults)
        self._check_size()

    def _check_size(self) -> None:
        numel = sum(p.numel() for p in self._params)
        limit = self.param_groups[0]["max_params"]
        if numel > limit:
            raise ValueError(
                f"Newton: {numel} parameters exceed max_params={limit} (the dense Hessian has "
                f"{numel}² entries and an O(n³) solve); use manualgrad.optim.HessianFree, "
                "which only needs Hessian-vector products, or raise max_params"
            )

    def _direction(self, flat_grad: Tensor, state: dict[str, Any]) -> Tensor:
        self._check_size()
        hessian = dense_hessian(flat_grad, self._params)
        direction, tau = newton_direction(
            hessian, flat_grad.detach(), self.param_groups[0]["damping"]
        )
        state["damping"] = tau
        return direction


class HessianFree(_ClosureSecondOrder):
    r"""Hessian-free (truncated Newton-CG) optimization: CG on Hessian-vector products.

    Algorithm (γ lr, λ damping), one iteration per ``step(closure)``::

        g ← ∇f(θ)
        d ← approximate solution of (H + λI)·d = −g by conjugate gradient from d₀ = 0, using
            only products (H + λI)·v = ∇(gᵀv) + λv; stop after ``cg_max_iter`` products, when
            ‖residual‖ ≤ cg_tol·‖g‖, or on non-positive curvature (then the last iterate, or −g)
        t ← γ, or Armijo backtracking from γ ('backtracking')
        θ ← θ + t·d

    Memory is O(n): no matrix is ever formed, so it works at any size. From Martens' method
    this keeps the truncated CG on curvature-vector products with Tikhonov damping λI; it uses
    the exact Hessian (not the Gauss–Newton matrix), a fixed λ (no Levenberg–Marquardt
    adaptation) and starts CG from zero.

    References: Martens, "Deep learning via Hessian-free optimization" (ICML 2010); Nocedal &
    Wright (2006), Algorithm 7.1 (line-search Newton-CG); Pearlmutter (1994).

    Args:
        params: iterable of real parameters (a single group).
        lr: γ, the step length, or the first trial of the line search (default: 1.0).
        damping: λ (default: 1e-3).
        cg_max_iter: most Hessian-vector products per step (default: 50).
        cg_tol: relative residual at which CG stops (default: 1e-5).
        line_search_fn: ``None`` or ``"backtracking"`` (default: None).

    State (on the first parameter): ``n_iter``, ``func_evals``, ``step_size`` (the last t) and
    ``cg_iters`` (products used by the last step). See the module docstring for the closure
    contract.
    """

    default_lr = 1.0  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1.0,
        damping: float = 1e-3,
        cg_max_iter: int = 50,
        cg_tol: float = 1e-5,
        line_search_fn: str | None = None,
    ) -> None:
        require(cg_max_iter >= 1, f"Invalid cg_max_iter value: {cg_max_iter}")
        check_non_negative(cg_tol=cg_tol)
        defaults = {
            "lr": lr,
            "damping": damping,
            "cg_max_iter": cg_max_iter,
            "cg_tol": cg_tol,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)

    def _direction(self, flat_grad: Tensor, state: dict[str, Any]) -> Tensor:
        group = self.param_groups[0]
        damping = group["damping"]

        def damped_hvp(vector: Tensor) -> Tensor:
            return hessian_vector_product(flat_grad, self._params, vector).add_(
                vector, alpha=damping
            )

        direction, iterations = conjugate_gradient(
            damped_hvp, -flat_grad.detach(), group["cg_max_iter"], group["cg_tol"]
        )
        state["cg_iters"] = iterations
        return direction
