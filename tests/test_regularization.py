"""manualgrad.regularization: (sub)gradients, coupled vs decoupled decay, the L0 gate."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from manualgrad import regularization as R


def _optimizers(*names: str) -> list:
    """(torch.optim.<name>, ...) plus the same from manualgrad.optim once it has all of them."""
    try:
        import manualgrad.optim as manual_optim
    except ImportError:
        manual_optim = None
    libraries = [torch.optim, manual_optim]
    found = [tuple(getattr(lib, name, None) for name in names) for lib in libraries]
    return [
        pytest.param(*classes, id=lib.__name__)
        for lib, classes in zip(libraries, found, strict=True)
        if None not in classes
    ]


def _away_from_zero(*shape: int, seed: int = 0) -> torch.Tensor:
    """float64 entries with |x| ∈ [0.2, 1.2], random signs (|x| is smooth there)."""
    gen = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(*shape, generator=gen, dtype=torch.float64) + 0.2
    sign = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1
    return (magnitude * sign).requires_grad_()


PENALTIES = {
    "l1": R.l1_penalty,
    "l2": R.l2_penalty,
    "elastic": lambda params: R.elastic_net(params, l1=0.3, l2=1.7),
}


@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_gradcheck_and_gradgradcheck(name):
    penalty = PENALTIES[name]
    a, b = _away_from_zero(3, 4, seed=1), _away_from_zero(5, seed=2)
    assert gradcheck(lambda x, y: penalty([x, y]), (a, b))
    assert gradgradcheck(lambda x, y: penalty([x, y]), (a, b))


def test_penalty_values_and_gradients():
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    cases = {
        "l1": (7.5, [[-1, 0, 1, 1], [[1, -1]]]),
        "l2": (0.5 * 15.25, [[-2, 0, 0.5, 3], [[1, -1]]]),
        "elastic": (0.3 * 7.5 + 1.7 * 0.5 * 15.25, None),
    }
    for name, (value, grads) in cases.items():
        out = PENALTIES[name]([x, y])
        assert math.isclose(out.item(), value, rel_tol=1e-15)
        if grads is not None:
            gx, gy = torch.autograd.grad(out, (x, y))
            assert gx.tolist() == grads[0] and gy.tolist() == grads[1]


@pytest.mark.parametrize("name", PENALTIES)
def test_subgradient_at_zero_is_zero(name):
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(PENALTIES[name](x), x)
    assert torch.equal(grad, torch.zeros_like(x))


def test_l1_subgradient_matches_torch_abs():
    x = torch.tensor([-1.5, 0.0, -0.0, 2.0], requires_grad=True)
    (ours,) = torch.autograd.grad(R.l1_penalty(x), x)
    (theirs,) = torch.autograd.grad(x.abs().sum(), x)
    assert torch.equal(ours, theirs)


def test_empty_collection_and_single_tensor():
    assert R.l2_penalty([]).item() == 0.0
    x = torch.tensor([3.0, -4.0])
    assert R.l2_penalty(x).item() == 12.5 and R.l1_penalty(iter([x])).item() == 7.0


def test_vmap_of_grad_through_penalty():
    x = _away_from_zero(4, 3).detach()
    per_row = torch.func.vmap(torch.func.grad(lambda row: R.elastic_net(row, 0.5, 2.0)))(x)
    torch.testing.assert_close(per_row, 0.5 * x.sign() + 2.0 * x, rtol=0, atol=1e-15)


def _regression(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(32, 2, generator=gen, dtype=torch.float64)
    model = torch.nn.Linear(5, 2, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
    return x, y, model


def _trajectory(optimizer_factory, penalty_weight: float, steps: int = 30, seed: int = 0):
    """Parameters after ``steps`` full-batch steps on MSE + penalty_weight · l2_penalty."""
    x, y, model = _regression(seed)
    optimizer = optimizer_factory(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        if penalty_weight:
            loss = loss + penalty_weight * R.l2_penalty(model.parameters())
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


SGD_VARIANTS = [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"momentum": 0.5}]


@pytest.mark.parametrize("sgd", _optimizers("SGD"))
@pytest.mark.parametrize("kwargs", SGD_VARIANTS)
def test_sgd_plus_l2_penalty_equals_sgd_weight_decay(sgd, kwargs):
    lam = 0.3
    coupled = _trajectory(lambda p: sgd(p, lr=0.1, **kwargs), penalty_weight=lam)
    decayed = _trajectory(lambda p: sgd(p, lr=0.1, weight_decay=lam, **kwargs), penalty_weight=0)
    assert (coupled - decayed).abs().max().item() < 1e-12


@pytest.mark.parametrize(("adam", "adamw"), _optimizers("Adam", "AdamW"))
def test_adam_plus_l2_is_coupled_and_differs_from_adamw(adam, adamw):
    """Adam + λ·l2 ≡ Adam(weight_decay=λ) (both coupled); AdamW (decoupled) ends elsewhere."""
    lam, lr = 0.5, 0.05
    coupled = _trajectory(lambda p: adam(p, lr=lr), penalty_weight=lam)
    torch_coupled = _trajectory(lambda p: adam(p, lr=lr, weight_decay=lam), penalty_weight=0)
    decoupled = _trajectory(lambda p: adamw(p, lr=lr, weight_decay=lam), penalty_weight=0)
    assert (coupled - torch_coupled).abs().max().item() < 1e-12
    gap = (coupled - decoupled).abs().max().item()
    assert gap > 1e-2, gap  # measured 0.38 after 30 steps at lr 0.05, λ 0.5


def test_adamw_is_adam_after_a_multiplicative_shrink():
    """AdamW's step = θ ← (1 − ηλ)θ, then the undecayed Adam step: the decay never sees √v̂."""
    lam, lr = 0.5, 0.05
    x, y, model = _regression()
    adam = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(30):
        adam.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 - lr * lam)
        adam.step()
    manual = torch.cat([p.detach().flatten() for p in model.parameters()])
    adamw = _trajectory(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=lam), 0)
    assert (manual - adamw).abs().max().item() < 1e-12


def test_l1_prox_soft_thresholds_to_exact_zeros():
    x = torch.tensor([-2.0, -0.1, 0.0, 0.05, 0.3, 1.0])
    R.l1_prox_([x], threshold=0.2)
    assert x.tolist() == pytest.approx([-1.8, 0.0, 0.0, 0.0, 0.1, 0.8])
    assert (x == 0).sum().item() == 3


# ----------------------------------------------------------------------------- L0 hard concrete

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1


def test_hard_concrete_forward_is_the_papers_formula():
    gen = torch.Generator().manual_seed(0)
    log_alpha = torch.randn(50, generator=gen, dtype=torch.float64) * 3
    u = torch.rand(50, generator=gen, dtype=torch.float64)
    z = R.HardConcreteFunction.apply(log_alpha, u, BETA, GAMMA, ZETA)
    s = 1 / (1 + torch.exp(-(torch.log(u / (1 - u)) + log_alpha) / BETA))
    torch.testing.assert_close(z, torch.clamp(s * (ZETA - GAMMA) + GAMMA, 0, 1))
    assert (z == 0).any() and (z == 1).any()


def _open_gate_inputs(n: int = 6):
    """u = ½ and |log α| ≤ ½ keep the stretched sample inside (0, 1), away from the clamps."""
    log_alpha = torch.linspace(-0.5, 0.5, n, dtype=torch.float64).requires_grad_()
    u = torch.linspace(0.3, 0.7, n, dtype=torch.float64)
    return log_alpha, u


def test_hard_concrete_gradcheck_and_gradgradcheck():
    log_alpha, u = _open_gate_inputs()

    def gate(a):
        return R.HardConcreteFunction.apply(a, u, BETA, GAMMA, ZETA)

    assert gradcheck(gate, (log_alpha,))
    assert gradgradcheck(gate, (log_alpha,))


def test_hard_concrete_gradient_is_zero_where_clamped():
    log_alpha = torch.tensor([-8.0, 8.0], dtype=torch.float64, requires_grad=True)
    z = R.HardConcreteFunction.apply(log_alpha, torch.full((2,), 0.5).double(), BETA, GAMMA, ZETA)
    assert z.tolist() == [0.0, 1.0]
    (grad,) = torch.autograd.grad(z.sum(), log_alpha)
    assert grad.tolist() == [0.0, 0.0]


def test_expected_l0_gradcheck_and_gradgradcheck():
    log_alpha = torch.randn(7, dtype=torch.float64).requires_grad_()
    shift = BETA * math.log(-GAMMA / ZETA)
    assert gradcheck(lambda a: R.ExpectedL0Function.apply(a, shift), (log_alpha,))
    assert gradgradcheck(lambda a: R.ExpectedL0Function.apply(a, shift), (log_alpha,))


def test_expected_l0_is_the_probability_a_sampled_gate_is_open():
    """Monte Carlo: the fraction of non-zero sampled gates matches σ(log α − β log(−γ/ζ))."""
    n = 20000
    log_alpha = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0], dtype=torch.float64)
    gate = R.L0Gate((n, 5), dtype=torch.float64)
    with torch.no_grad():
        gate.log_alpha.copy_(log_alpha.expand(n, 5))
        samples = gate.gates(torch.Generator().manual_seed(0))
    open_fraction = (samples != 0).double().mean(0)
    expected = torch.sigmoid(log_alpha - BETA * math.log(-GAMMA / ZETA))
    assert (open_fraction - expected).abs().max().item() < 5 * math.sqrt(0.25 / n)
    assert math.isclose(gate.penalty().item(), n * expected.sum().item(), rel_tol=1e-12)


def test_l0_gate_eval_mode_is_deterministic_papers_test_gate():
    gate = R.L0Gate((3, 2)).eval()
    weight = torch.randn(3, 2)
    expected = torch.clamp(torch.sigmoid(gate.log_alpha) * (ZETA - GAMMA) + GAMMA, 0, 1)
    torch.testing.assert_close(gate(weight), weight * expected)
    assert torch.equal(gate(weight), gate(weight))


def test_l0_gate_as_parametrization_gets_log_alpha_gradients():
    layer = torch.nn.Linear(4, 3)
    gate = R.L0Gate(layer.weight.shape)
    torch.nn.utils.parametrize.register_parametrization(layer, "weight", gate)
    (layer(torch.randn(2, 4)).sum() + gate.penalty()).backward()
    assert gate.log_alpha.grad is not None and gate.log_alpha.grad.abs().sum() > 0


def test_l0_gate_selects_the_relevant_inputs():
    """y depends on 2 of 10 inputs: the L0 penalty closes the other 8 gates (eval gate = 0)."""
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = 3 * x[:, 0] - 2 * x[:, 1]
    weight = torch.nn.Parameter(torch.zeros(10))
    gate = R.L0Gate(10)
    optimizer = torch.optim.Adam([weight, *gate.parameters()], lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        loss = (x @ gate(weight) - y).pow(2).mean() + 0.05 * gate.penalty()
        loss.backward()
        optimizer.step()
    gates = gate.eval().gates().detach()
    assert (gates[:2] > 0.9).all() and (gates[2:] == 0).all(), gates


@pytest.mark.parametrize(
    "kwargs", [{"droprate_init": 0.0}, {"beta": 0.0}, {"gamma": 0.1}, {"zeta": 0.9}]
)
def test_l0_gate_rejects_bad_hyper_parameters(kwargs):
    with pytest.raises(ValueError):
        R.L0Gate(3, **kwargs)
