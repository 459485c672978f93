"""Line searches for the closure-based optimizers: strong Wolfe (LBFGS) and Armijo backtracking.

Both search along a direction d from x for a step t. ``obj_func(x, t, d)`` evaluates the loss
(and, for strong Wolfe, its flat gradient) at x + t·d and leaves the parameters at x.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Number = Any  # a Python float or a 0-d tensor: the searches mix both exactly as torch does


def cubic_interpolate(
    x1: Number,
    f1: Number,
    g1: Number,
    x2: Number,
    f2: Number,
    g2: Number,
    bounds: tuple[Number, Number] | None = None,
) -> Number:
    r"""Minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clamped to bounds.

        d1 = g1 + g2 − 3·(f1 − f2)/(x1 − x2)
        d2 = √(d1² − g1·g2)
        x* = x2 − (x2 − x1)·(g2 + d2 − d1)/(g2 − g1 + 2·d2)      (x1 ≤ x2; mirrored otherwise)

    When d1² < g1·g2 the cubic has no local minimizer and the midpoint of the bounds is returned.
    The bounds default to the interval [min(x1, x2), max(x1, x2)] (Nocedal & Wright eq. 3.59).
    """
    if bounds is not None:
        low, high = bounds
    else:
        low, high = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = d2_square.sqrt()
    if x1 <= x2:
        minimizer = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        minimizer = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(minimizer, low), high)


class _Bracket:
    """Two trial points (t, f, g, gᵀd) of the zoom phase, indexed 0 and 1."""

    def __init__(self, ts: list, fs: list, gs: list, gtds: list) -> None:
        self.t, self.f, self.g, self.gtd = ts, fs, gs, gtds

    def set(self, i: int, t: Number, f: Number, g: Tensor, gtd: Number) -> None:
        self.t[i], self.f[i], self.g[i], self.gtd[i] = t, f, g, gtd

    def low_high(self) -> tuple[int, int]:
        return (0, 1) if self.f[0] <= self.f[-1] else (1, 0)


def strong_wolfe(
    obj_func: Callable[[Any, Number, Tensor], tuple[float, Tensor]],
    x: Any,
    t: Number,
    d: Tensor,
    f: float,
    g: Tensor,
    gtd: Number,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, Tensor, Number, int]:
    r"""Find t satisfying the strong Wolfe conditions along d; return (f, g, t, evaluations).

        f(x + t·d) ≤ f(x) + c1·t·gᵀd             (sufficient decrease)
        |∇f(x + t·d)ᵀd| ≤ c2·|gᵀd|               (curvature)

    Bracketing phase: grow t (cubic extrapolation within [t + 0.01(t − t_prev), 10t]) until an
    interval is known to contain acceptable points; zoom phase: shrink it by safeguarded cubic
    interpolation. Nocedal & Wright, "Numerical Optimization", Algorithms 3.5 and 3.6; the same
    arithmetic as minFunc's and torch.optim.LBFGS's ``_strong_wolfe``.
    """
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = obj_func(x, t, d)
    evals = 1
    gtd_new = g_new.dot(d)

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = None
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = _Bracket(
                [t_prev, t], [f_prev, f_new], [g_prev, _copy(g_new)], [gtd_prev, gtd_new]
            )
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = _Bracket([t], [f_new], [g_new], [gtd_new])
            done = True
            break
        if gtd_new >= 0:
            bracket = _Bracket(
                [t_prev, t], [f_prev, f_new], [g_prev, _copy(g_new)], [gtd_prev, gtd_new]
            )
            break
        extrapolated = cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10)
        )
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, _copy(g_new), gtd_new
        t = extrapolated
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket = _Bracket([0, t], [f, f_new], [g, g_new], [None, None])

    insufficient_progress = False
    low, high = bracket.low_high()
    while not done and ls_iter < max_ls:
        if abs(bracket.t[1] - bracket.t[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(
            bracket.t[0], bracket.f[0], bracket.gtd[0], bracket.t[1], bracket.f[1], bracket.gtd[1]
        )
        # Safeguard: a trial within 10% of the bracket's ends is moved to 10% inside when the
        # previous trial also made little progress, or when it falls on or outside an end.
        t_max, t_min = max(bracket.t), min(bracket.t)
        margin = 0.1 * (t_max - t_min)
        if min(t_max - t, t - t_min) < margin:
            if insufficient_progress or t >= t_max or t <= t_min:
                t = t_max - margin if abs(t - t_max) < abs(t - t_min) else t_min + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket.f[low]:
            bracket.set(high, t, f_new, _copy(g_new), gtd_new)  # new high end
            low, high = bracket.low_high()
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket.t[high] - bracket.t[low]) >= 0:
                bracket.set(high, bracket.t[low], bracket.f[low], bracket.g[low], bracket.gtd[low])
            bracket.set(low, t, f_new, _copy(g_new), gtd_new)  # new low end
    return bracket.f[low], bracket.g[low], bracket.t[low], evals


def _copy(tensor: Tensor) -> Tensor:
    return tensor.clone(memory_format=torch.contiguous_format)


def backtracking(
    obj_func: Callable[[float], float],
    f: float,
    gtd: float,
    t: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_ls: int = 50,
) -> tuple[float, float, int]:
    r"""Armijo backtracking: the first t = t₀, t₀ρ, t₀ρ², ... with f(x + t·d) ≤ f + c1·t·gᵀd.

    ``obj_func(t)`` returns the loss at x + t·d. Returns (t, f(x + t·d), evaluations); after
    ``max_ls`` failed halvings it returns t = 0 and f (no move). Nocedal & Wright, Algorithm 3.1.
    """
    for evals in range(1, max_ls + 1):
        f_new = obj_func(t)
        if f_new <= f + c1 * t * gtd:
            return t, f_new, evals
        t *= shrink
    return 0.0, f, max_ls
