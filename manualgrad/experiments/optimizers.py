r"""optimizers: SGD, momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, L-BFGS and Newton on
digits (logistic regression, 3 vs 8) and on two 2-d surfaces, trajectories drawn over contours.

Rosenbrock f = (1 − x)² + 100 (y − x²)² has a long curved valley: its Hessian's eigenvalues
differ by ~10³, so plain gradient descent zig-zags across the valley and crawls along it;
momentum averages the zig-zag out, Adam/RMSprop rescale each coordinate, and Newton
(d = −H⁻¹∇f) follows the curvature.

The saddle f = x² − y² has ∇f = (2x, −2y) and H = diag(2, −2). Starting at (1, ε), gradient
descent multiplies y by (1 + 2η) per step: with ε tiny it takes ~ln(1/ε)/(2η) steps to leave,
so it *stalls* near the saddle. Momentum accumulates the small, consistent −y gradient and Adam
divides it by its own magnitude (steps of ≈ η whatever |∇f|), so both escape. Pure Newton jumps
to the critical point: d = −H⁻¹∇f = −(x, y) lands on (0, 0) in one step — Newton is attracted to
saddles, because it seeks ∇f = 0, not a minimum. ``manualgrad.optim.Newton`` shifts H by τI
until it is positive definite, which turns the −2 curvature into a small positive one and
sends it away from the saddle: that modification is what makes Newton usable on non-convex
losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import Tensor

import manualgrad.nn as nn
import manualgrad.nn.functional as F
from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import LBFGS, SGD, Adadelta, Adagrad, Adam, Newton, RMSprop
from manualgrad.regularization import l2_penalty
from manualgrad.train.data import DataSplit

CLAIM = (
    "on a saddle, GD stalls, momentum/Adam escape and pure Newton converges to it; "
    "Newton/L-BFGS need fewest steps on digits"
)

Factory = Callable[[list[Tensor]], torch.optim.Optimizer]

# Full-batch logistic regression on digits 3 vs 8 (convex; 65 parameters: small enough for a
# dense Hessian, which Newton assembles from one Hessian-vector product per parameter).
# L-BFGS takes one iteration per step like the others; max_eval must then be raised, since its
# default max_iter·5//4 = 1 evaluation leaves the line search no trial (torch.optim's quirk).
PAIR = (3, 8)
DIGITS: dict[str, Factory] = {
    "sgd": lambda p: SGD(p, lr=0.5),
    "momentum": lambda p: SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda p: Adagrad(p, lr=0.5),
    "adadelta": lambda p: Adadelta(p, lr=1.0),
    "rmsprop": lambda p: RMSprop(p, lr=0.01),
    "adam": lambda p: Adam(p, lr=0.05),
    "lbfgs": lambda p: LBFGS(p, lr=1.0, max_iter=1, max_eval=25, line_search_fn="strong_wolfe"),
    "newton": lambda p: Newton(p, lr=1.0, line_search_fn="backtracking"),
}
ROSENBROCK: dict[str, Factory] = {
    "sgd": lambda p: SGD(p, lr=1e-3),
    "momentum": lambda p: SGD(p, lr=1e-3, momentum=0.9),
    "nesterov": lambda p: SGD(p, lr=1e-3, momentum=0.9, nesterov=True),
    "adagrad": lambda p: Adagrad(p, lr=0.5),
    "adadelta": lambda p: Adadelta(p, lr=10.0),
    "rmsprop": lambda p: RMSprop(p, lr=0.01),
    "adam": lambda p: Adam(p, lr=0.05),
    "lbfgs": lambda p: LBFGS(p, lr=1.0, max_iter=1, max_eval=25, line_search_fn="strong_wolfe"),
    "newton": lambda p: Newton(p, lr=1.0, line_search_fn="backtracking"),
}
SADDLE: dict[str, Factory] = {
    "sgd": lambda p: SGD(p, lr=0.01),
    "momentum": lambda p: SGD(p, lr=0.01, momentum=0.9),
    "nesterov": lambda p: SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    "adagrad": lambda p: Adagrad(p, lr=0.1),
    "adadelta": lambda p: Adadelta(p, lr=10.0),
    "rmsprop": lambda p: RMSprop(p, lr=0.01),
    "adam": lambda p: Adam(p, lr=0.02),
    "newton": lambda p: Newton(p, lr=1.0),
}


def rosenbrock(p: Tensor) -> Tensor:
    """(1 − x)² + 100 (y − x²)², minimum 0 at (1, 1)."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def saddle(p: Tensor) -> Tensor:
    """x² − y², a saddle at (0, 0)."""
    return p[0] ** 2 - p[1] ** 2


@dataclass(frozen=True)
class Surface:
    """A 2-d test function, where to start, the point distances are measured to (the minimum,
    or the saddle), the optimizers to race, the plotted box, the radius counted as escape and
    the number of steps (capped at ``QUICK_STEPS`` in a quick run)."""

    function: Callable[[Tensor], Tensor]
    start: tuple[float, float]
    reference: tuple[float, float]
    optimizers: dict[str, Factory]
    box: tuple[float, float, float, float]
    radius: float
    steps: int


SURFACES = {
    "rosenbrock": Surface(
        rosenbrock, (-1.2, 1.0), (1.0, 1.0), ROSENBROCK, (-2, 2, -1, 3), 10.0, 1000
    ),
    "saddle": Surface(saddle, (1.0, 1e-4), (0.0, 0.0), SADDLE, (-1.5, 1.5, -1.5, 1.5), 3.0, 250),
}
QUICK_STEPS = 150  # cap on a surface's steps in a quick run


def step(optimizer: torch.optim.Optimizer, objective: Callable[[], Tensor]) -> float:
    """One optimizer step on ``objective``; the loss before it. Second-order optimizers (the
    class's ``second_order`` trait) take the loss un-differentiated (they differentiate twice
    themselves), the others a closure that runs backward."""
    if type(optimizer).second_order:
        return float(optimizer.step(objective).detach())

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss.detach()

    return float(optimizer.step(closure))


def digits_curve(factory: Factory, data: DataSplit, steps: int, weight_decay: float) -> list[float]:
    """Full-batch loss (logistic + λ·½‖w‖²) per step of one optimizer, from the current RNG
    state's initial weights."""
    model = nn.Linear(data.num_features, 1)
    optimizer = factory(list(model.parameters()))
    targets = data.y_train.to(data.x_train.dtype)

    def objective() -> Tensor:
        loss = F.binary_cross_entropy_with_logits(model(data.x_train).squeeze(1), targets)
        return loss + weight_decay * l2_penalty(model.weight)

    return [step(optimizer, objective) for _ in range(steps)]


def digits_curves(steps: int, seed: int, weight_decay: float = 1e-3) -> dict[str, list[float]]:
    """:func:`digits_curve` for every optimizer, each from the same initial weights."""
    data = common.digit_pair(*PAIR, seed=seed)
    curves = {}
    for name, factory in DIGITS.items():
        torch.manual_seed(seed)
        curves[name] = digits_curve(factory, data, steps, weight_decay)
    return curves


def trajectory(
    function: Callable[[Tensor], Tensor],
    start: Tensor,
    optimizer_factory: Factory,
    steps: int,
    radius: float,
) -> Tensor:
    """The iterates of one optimizer on a 2-d function, stopped once ‖p‖ > ``radius`` (escaped)
    or once p stops moving (converged)."""
    point = start.clone().requires_grad_(True)
    optimizer = optimizer_factory([point])
    path = [point.detach().clone()]
    for _ in range(steps):
        step(optimizer, lambda: function(point))
        path.append(point.detach().clone())
        if not torch.isfinite(path[-1]).all() or path[-1].norm() > radius:
            break
        if torch.equal(path[-1], path[-2]):
            break
    return torch.stack(path)


def pure_newton(function: Callable[[Tensor], Tensor], start: Tensor, steps: int) -> Tensor:
    """Undamped Newton iterates p ← p − H(p)⁻¹ ∇f(p) (what Newton's method is before any
    modification)."""
    path = [start.clone()]
    for _ in range(steps):
        p = path[-1]
        gradient = torch.func.grad(function)
        grad, hessian = gradient(p), torch.func.jacrev(gradient)(p)
        path.append(p - torch.linalg.solve(hessian, grad))
    return torch.stack(path)


def draw_surface(axis, surface: Surface, paths: dict[str, Tensor], title: str) -> None:
    """Contours of the surface over its box (log scale for Rosenbrock) and each path on top,
    its end marked ×."""
    x0, x1, y0, y1 = surface.box
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, 200), torch.linspace(y0, y1, 200), indexing="xy")
    values = surface.function(torch.stack([xs, ys]))
    if surface.function is rosenbrock:
        values = values.log1p()
    axis.contour(xs.numpy(), ys.numpy(), values.numpy(), levels=30, cmap="Greys", linewidths=0.6)
    for method, path in paths.items():
        x, y = path.numpy().T
        line = axis.plot(x, y, marker=".", markersize=2, linewidth=1, label=method)[0]
        axis.plot(x[-1], y[-1], marker="x", markersize=8, color=line.get_color())
    axis.set(xlim=(x0, x1), ylim=(y0, y1), title=title, xlabel="x", ylabel="y")
    axis.legend(fontsize=7, loc="lower right")


def race(log: ExperimentLog, axis, name: str, surface: Surface, steps: int) -> dict[str, float]:
    """Run every optimizer (and pure Newton) on one surface; log f along each path, draw the
    paths, return each path's final distance to the surface's reference point."""
    start = torch.tensor(surface.start, dtype=torch.float64)
    paths = {
        method: trajectory(surface.function, start, factory, steps, surface.radius)
        for method, factory in surface.optimizers.items()
    }
    paths["pure_newton"] = pure_newton(surface.function, start, 5)
    reference = torch.tensor(surface.reference, dtype=torch.float64)
    figures = {}
    for method, path in paths.items():
        log.curve(f"{name}_value/{method}", [float(surface.function(p)) for p in path])
        figures[f"{name}_{method}_final_distance"] = float((path[-1] - reference).norm())
    draw_surface(axis, surface, paths, f"{name}, start {surface.start}")
    return figures


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Digits loss curves, then trajectories on Rosenbrock and the saddle."""
    figures: dict[str, float] = {}
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    curves = digits_curves(15 if quick else 100, log.seed)
    for name, curve in curves.items():
        log.curve(f"digits_loss/{name}", curve)
        figures[f"digits_{name}_final_loss"] = curve[-1]
        axes[0].semilogy(curve, label=name)
    axes[0].set(
        xlabel="step (full batch)",
        ylabel="loss",
        title=f"Logistic regression, digits {PAIR[0]} vs {PAIR[1]}",
    )
    axes[0].legend(fontsize=7)
    for axis, (name, surface) in zip(axes[1:], SURFACES.items(), strict=True):
        steps = min(surface.steps, QUICK_STEPS) if quick else surface.steps
        figures.update(race(log, axis, name, surface, steps))
    log.figure("optimizers", figure)
    return figures
