"""L-BFGS: quasi-Newton steps from a short history of gradient differences."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._base import Closure, Traits, check_lr, check_single_group
from ._line_search import strong_wolfe


def lbfgs_direction(
    flat_grad: Tensor,
    old_dirs: list[Tensor],
    old_stps: list[Tensor],
    ro: list[Tensor],
    h_diag: Tensor | float,
    al: list[Any],
) -> Tensor:
    r"""d = −H·g by the two-loop recursion over the stored pairs (s_i, y_i), ρ_i = 1/(y_iᵀs_i).

        q ← −g
        for i = k−1 … 0:   α_i ← ρ_i·s_iᵀq;   q ← q − α_i·y_i
        r ← γ·q            (γ = h_diag = sᵀy / yᵀy of the newest pair: the initial H₀ = γI)
        for i = 0 … k−1:   β ← ρ_i·y_iᵀr;     r ← r + (α_i − β)·s_i
        d = r

    ``old_dirs`` holds the y_i, ``old_stps`` the s_i; ``al`` is scratch for the α_i (kept in the
    optimizer's state, as torch does). Nocedal & Wright, "Numerical Optimization", Algorithm 7.4.
    """
    q = flat_grad.neg()
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-al[i])
    r = torch.mul(q, h_diag)
    for i in range(len(old_dirs)):
        be_i = old_dirs[i].dot(r) * ro[i]
        r.add_(old_stps[i], alpha=al[i] - be_i)
    return r


class LBFGS(Traits, Optimizer):
    r"""L-BFGS with an optional strong-Wolfe line search (the same algorithm as torch.optim.LBFGS).

    Algorithm (γ lr, m history_size), per call of ``step(closure)``, up to ``max_iter`` iterations::

        g ← ∇f(θ);  stop if ‖g‖∞ ≤ tolerance_grad
        repeat
            first iteration ever:  d ← −g,  H₀ ← I
            otherwise:             s ← t·d,  y ← g − g_prev
                                   if yᵀs > 1e-10: store (s, y) (dropping the oldest beyond m),
                                                   H₀ ← (yᵀs / yᵀy)·I
                                   d ← −H·g  (two-loop recursion, :func:`lbfgs_direction`)
            t ← min(1, 1/‖g‖₁)·γ on the very first iteration, γ afterwards
            stop if gᵀd > −tolerance_change            (not a descent direction)
            strong_wolfe: t ← step satisfying the strong Wolfe conditions along d
            θ ← θ + t·d;  re-evaluate f, g (skipped on the last iteration without line search)
        until max_iter iterations, max_eval evaluations, ‖g‖∞ ≤ tolerance_grad,
              ‖t·d‖∞ ≤ tolerance_change or |f − f_prev| < tolerance_change

    The history lives across calls of ``step``: one call is a short L-BFGS run. Like torch's,
    this optimizer has a single parameter group, keeps its state on the first parameter (keys
    ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``, ``al``) and needs ``param_bytes·(history_size + 1)``
    extra memory.

    References: Liu & Nocedal, "On the limited memory BFGS method for large scale optimization"
    (Math. Programming 45, 1989); Nocedal & Wright, "Numerical Optimization" (2006), ch. 3 and 7;
    Schmidt's minFunc, which torch's implementation follows.

    Args:
        params: iterable of parameters (complex parameters count as two real ones).
        lr: γ, the initial step length of every iteration (default: 1).
        max_iter: iterations per ``step`` (default: 20).
        max_eval: closure evaluations per ``step`` (default: max_iter·5/4).
        tolerance_grad: stop when the largest gradient component is this small (default: 1e-7).
        tolerance_change: stop when the step or the loss change is this small (default: 1e-9).
        history_size: m, the number of stored pairs (default: 100).
        line_search_fn: ``None`` (fixed step t) or ``"strong_wolfe"`` (default: None).

    ``step(closure)``: the closure clears the gradients, computes the loss, calls
    ``loss.backward()`` and returns the loss; the value returned by ``step`` is the first loss.
    """

    default_lr = 1.0  # manualgrad train's lr without --lr (Traits)
    second_order = False
    closure_evaluations = None  # up to max_eval per step

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        check_lr(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _gather_flat_grad(self) -> Tensor:
        """All gradients as one real vector (zeros for parameters without a gradient)."""
        views = []
        for p in self._params:
            if p.grad is None:
                view = p.new(p.numel()).zero_()
            elif p.grad.is_sparse:
                view = p.grad.to_dense().view(-1)
            else:
                view = p.grad.view(-1)
            if torch.is_complex(view):
                view = torch.view_as_real(view).view(-1)
            views.append(view)
        return torch.cat(views, 0)

    def _add_grad(self, step_size: Any, update: Tensor) -> None:
        """θ ← θ + step_size·update, with ``update`` flat."""
        offset = 0
        for p in self._params:
            if torch.is_complex(p):
                p = torch.view_as_real(p)
            numel = p.numel()
            p.add_(update[offset : offset + numel].view_as(p), alpha=step_size)
            offset += numel

    def _clone_param(self) -> list[Tensor]:
        return [p.clone(memory_format=torch.contiguous_format) for p in self._params]

    def _set_param(self, params_data: list[Tensor]) -> None:
        for p, data in zip(self._params, params_data, strict=True):
            p.copy_(data)

    def _directional_evaluate(
        self, closure: Closure, x: list[Tensor], t: Any, d: Tensor
    ) -> tuple[float, Tensor]:
        """(f, ∇f) at x + t·d, leaving the parameters at x."""
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    @torch.no_grad()
    def step(self, closure: Closure) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss before the first one.

        Args:
            closure (Callable): re-evaluates the model, calls ``backward()`` and returns the loss.
        """
        check_single_group(self)
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr = group["lr"].item() if isinstance(group["lr"], Tensor) else group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            if state["n_iter"] == 1:  # steepest descent to start the history
                d = flat_grad.neg()
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1
            else:
                y = flat_grad.sub(prev_flat_grad)
                s = d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:  # keep the pair only when the curvature yᵀs is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                if "al" not in state:
                    state["al"] = [None] * history_size
                d = lbfgs_direction(flat_grad, old_dirs, old_stps, ro, h_diag, state["al"])

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:  # not a descent direction
                break

            evals = 0
            if line_search_fn is None:
                self._add_grad(t, d)
                if n_iter != max_iter:  # the last iteration skips the re-evaluation
                    with torch.enable_grad():
                        new_loss = closure()
                    loss = float(new_loss)
                    flat_grad = self._gather_flat_grad()
                    evals = 1
            else:
                x_init = self._clone_param()

                def obj_func(x: list[Tensor], t: Any, d: Tensor) -> tuple[float, Tensor]:
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, evals = strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add_grad(t, d)
            opt_cond = flat_grad.abs().max() <= tolerance_grad

            current_evals += evals
            state["func_evals"] += evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if d.mul(t).abs().max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(
            d=d,
            t=t,
            old_dirs=old_dirs,
            old_stps=old_stps,
            ro=ro,
            H_diag=h_diag,
            prev_flat_grad=prev_flat_grad,
            prev_loss=prev_loss,
        )
        return orig_loss
