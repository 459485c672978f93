"""manualgrad.prune: persistent masks, torch.nn.utils.prune's state_dict and errors, composition."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils import prune as torch_prune

from manualgrad import prune


def _linear_classes() -> list[type[torch.nn.Module]]:
    """torch.nn.Linear, plus manualgrad.nn.Linear once it exists."""
    try:
        from manualgrad.nn import Linear
    except ImportError:
        return [torch.nn.Linear]
    return [torch.nn.Linear, Linear]


def _optimizer_factories() -> list:
    """(id, factory) for the optimizers the masks must survive, torch.optim and manualgrad.optim."""
    recipes = [
        ("SGD", {"lr": 0.1, "momentum": 0.9}),
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"lr": 0.05}),
        ("AdamW", {"lr": 0.05}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
        ("Adagrad", {"lr": 0.1}),
    ]
    try:
        import manualgrad.optim as manual_optim
    except ImportError:
        manual_optim = None
    factories = []
    for library in (torch.optim, manual_optim):
        for name, kwargs in recipes:
            cls = getattr(library, name, None)
            if cls is not None:
                label = f"{library.__name__}.{name}({kwargs})"
                factories.append(pytest.param(cls, kwargs, id=label))
    return factories


LINEARS = [pytest.param(cls, id=f"{cls.__module__}.{cls.__name__}") for cls in _linear_classes()]


def _mlp(linear: type[torch.nn.Module]) -> torch.nn.Sequential:
    return torch.nn.Sequential(linear(8, 16), torch.nn.Tanh(), linear(16, 4))


def _prunable(net: torch.nn.Sequential) -> list[tuple[torch.nn.Module, str]]:
    return [(net[0], "weight"), (net[2], "weight"), (net[2], "bias")]


@pytest.mark.parametrize("linear", LINEARS)
@pytest.mark.parametrize(("optimizer", "kwargs"), _optimizer_factories())
def test_masks_persist_through_optimizer_steps(linear, optimizer, kwargs):
    net = _mlp(linear)
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.global_unstructured(_prunable(net)[1:], amount=0.6)
    masks = {(id(m), n): getattr(m, n + "_mask").clone() for m, n in _prunable(net)}
    originals = {(id(m), n): getattr(m, n + "_orig").detach().clone() for m, n in _prunable(net)}
    opt = optimizer(net.parameters(), **kwargs)
    x, y = torch.randn(32, 8), torch.randn(32, 4)
    decays = kwargs.get("weight_decay", opt.defaults.get("weight_decay", 0)) != 0
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        for module, name in _prunable(net):
            pruned = masks[id(module), name] == 0
            grad = getattr(module, name + "_orig").grad
            assert torch.equal(grad[pruned], torch.zeros_like(grad[pruned]))
        opt.step()
    net(x)  # the pre-hook recomputes weight = weight_orig ⊙ weight_mask
    for module, name in _prunable(net):
        mask, pruned = masks[id(module), name], masks[id(module), name] == 0
        assert torch.equal(getattr(module, name + "_mask"), mask)
        effective = getattr(module, name)
        assert torch.equal(effective[pruned], torch.zeros_like(effective[pruned]))
        orig = getattr(module, name + "_orig").detach()
        before = originals[id(module), name]
        if not decays:  # zero gradient ⇒ zero update (weight decay shrinks only the unused orig)
            assert torch.equal(orig[pruned], before[pruned])
        if (~pruned).any():
            assert not torch.equal(orig[~pruned], before[~pruned])  # the rest did train


@pytest.mark.parametrize("linear", LINEARS)
def test_remove_makes_pruning_permanent(linear):
    layer = linear(6, 5)
    prune.l1_unstructured(layer, "weight", amount=0.4)
    orig = layer.weight_orig
    expected = (layer.weight_orig * layer.weight_mask).detach().clone()
    prune.remove(layer, "weight")
    assert layer.weight is orig and isinstance(layer.weight, torch.nn.Parameter)
    assert torch.equal(layer.weight.detach(), expected)
    assert (layer.weight == 0).sum().item() == 12
    assert not prune.is_pruned(layer) and not layer._forward_pre_hooks
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert {n for n, _ in layer.named_parameters()} == {"weight", "bias"}
    layer(torch.randn(3, 6)).sum().backward()
    assert (layer.weight.grad[expected == 0] != 0).any()  # no mask any more: zeros may train


def _both_pruned(operations) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Apply ``operations(library, net)`` to twin nets with torch's prune and manualgrad's."""
    net = _mlp(torch.nn.Linear)
    theirs, ours = copy.deepcopy(net), copy.deepcopy(net)
    operations(torch_prune, theirs)
    operations(prune, ours)
    return theirs, ours


def _global(library, net, amount):
    if library is torch_prune:
        library.global_unstructured(
            _prunable(net), pruning_method=torch_prune.L1Unstructured, amount=amount
        )
    else:
        library.global_unstructured(_prunable(net), amount=amount)


INTEROP = {
    "l1": lambda lib, net: lib.l1_unstructured(net[0], "weight", amount=0.3),
    "l1-count-bias": lambda lib, net: lib.l1_unstructured(net[2], "bias", amount=2),
    "l1-iterated": lambda lib, net: [
        lib.l1_unstructured(net[0], "weight", amount=a) for a in (0.5, 17, 0.25)
    ],
    "global": lambda lib, net: _global(lib, net, 0.7),
    "l1-then-global": lambda lib, net: [
        lib.l1_unstructured(net[2], "weight", amount=0.5),
        _global(lib, net, 25),
    ],
    "importance": lambda lib, net: lib.l1_unstructured(
        net[0], "weight", amount=0.5, importance_scores=torch.arange(128.0).reshape(16, 8)
    ),
    "remove": lambda lib, net: [
        lib.l1_unstructured(net[0], "weight", amount=0.5),
        lib.l1_unstructured(net[2], "weight", amount=0.5),
        lib.remove(net[0], "weight"),
    ],
}


@pytest.mark.parametrize("case", INTEROP)
def test_state_dict_keys_and_values_equal_torch_prune(case):
    theirs, ours = _both_pruned(INTEROP[case])
    theirs_sd, ours_sd = theirs.state_dict(), ours.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key, value in theirs_sd.items():
        assert torch.equal(ours_sd[key], value), key
    x = torch.randn(5, 8)
    assert torch.equal(ours(x), theirs(x))
    assert prune.is_pruned(ours) and prune.is_pruned(theirs)


def test_torch_pruned_checkpoint_loads_into_manualgrad_pruned_model():
    theirs, ours = _both_pruned(lambda lib, net: lib.l1_unstructured(net[0], "weight", 0.2))
    torch_prune.l1_unstructured(theirs[0], "weight", amount=0.5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 8)
    assert torch.equal(ours(x), theirs(x))
    expected = (theirs[0].weight_mask == 0).double().mean().item()
    assert prune.sparsity_report(ours)["0.weight"] == pytest.approx(expected, abs=0)


BAD_AMOUNTS = [-1, 1.5, -0.1, "0.5", None, 129, 200]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_amount_validation_like_torch(amount):
    with pytest.raises(Exception) as theirs:
        torch_prune.l1_unstructured(torch.nn.Linear(8, 16), "weight", amount)
    with pytest.raises(theirs.type) as ours:
        prune.l1_unstructured(torch.nn.Linear(8, 16), "weight", amount)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("amount", [-1, 2.0, "a", 300])
def test_global_amount_validation_like_torch(amount):
    with pytest.raises(Exception) as theirs:
        _global(torch_prune, _mlp(torch.nn.Linear), amount)
    with pytest.raises(theirs.type) as ours:
        _global(prune, _mlp(torch.nn.Linear), amount)
    assert str(ours.value) == str(theirs.value)


def test_failed_pruning_leaves_module_untouched():
    layer = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError):
        prune.l1_unstructured(layer, "weight", amount=7)
    assert not prune.is_pruned(layer) and list(layer.state_dict()) == ["weight", "bias"]


def test_global_rejects_other_methods_and_non_iterables():
    net = _mlp(torch.nn.Linear)
    with pytest.raises(TypeError, match="only L1 magnitude"):
        prune.global_unstructured(
            _prunable(net), pruning_method=torch_prune.RandomUnstructured, amount=0.1
        )
    with pytest.raises(TypeError, match="not an Iterable"):
        prune.global_unstructured(net[0], amount=0.1)


def test_remove_unpruned_raises_like_torch():
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError) as theirs:
        torch_prune.remove(layer, "weight")
    with pytest.raises(ValueError) as ours:
        prune.remove(layer, "weight")
    assert str(ours.value) == str(theirs.value)


def test_iterative_pruning_composes_among_remaining_weights():
    layer = torch.nn.Linear(10, 10)
    with torch.no_grad():
        layer.weight.copy_(torch.randperm(100).reshape(10, 10).float() + 1)  # |w| = 1 … 100
    prune.l1_unstructured(layer, "weight", amount=0.5)
    first = layer.weight_mask.clone()
    prune.l1_unstructured(layer, "weight", amount=0.5)
    second = layer.weight_mask.clone()
    prune.l1_unstructured(layer, "weight", amount=5)
    third = layer.weight_mask
    magnitude = layer.weight_orig.detach()
    assert torch.equal(first, (magnitude > 50).float())  # 50 % of 100
    assert torch.equal(second, (magnitude > 75).float())  # 50 % of the remaining 50 → 25 left
    assert torch.equal(third, (magnitude > 80).float())  # 5 more of the remaining 25
    assert (second <= first).all() and (third <= second).all()  # zeros are never revived


def test_global_pruning_ranks_across_layers():
    small, large = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    with torch.no_grad():
        small.weight.uniform_(-0.01, 0.01)
        large.weight.uniform_(1.0, 2.0)
    prune.global_unstructured([(small, "weight"), (large, "weight")], amount=0.5)
    assert (small.weight == 0).all() and (large.weight != 0).all()


def test_sparsity_report():
    net = _mlp(torch.nn.Linear)
    prune.l1_unstructured(net[0], "weight", amount=32)
    prune.l1_unstructured(net[2], "bias", amount=1)
    with torch.no_grad():
        net[0].bias[:4] = 0
    report = prune.sparsity_report(net)
    assert report == {
        "0.weight": 32 / 128,
        "0.bias": 4 / 16,
        "2.weight": 0.0,
        "2.bias": 1 / 4,
        "total": (32 + 4 + 1) / (128 + 16 + 64 + 4),
    }


def test_is_pruned_sees_submodules_and_torch_hooks():
    net = _mlp(torch.nn.Linear)
    assert not prune.is_pruned(net)
    prune.l1_unstructured(net[2], "weight", amount=0.1)
    assert prune.is_pruned(net) and not prune.is_pruned(net[0])
    torch_prune.l1_unstructured(net[0], "weight", amount=0.1)
    assert prune.is_pruned(net[0])


def test_mask_function_gradcheck_and_gradgradcheck():
    orig = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(3, 4) > 0.5).double()
    assert gradcheck(lambda w: prune.MaskFunction.apply(w, mask), (orig,))
    assert gradgradcheck(lambda w: prune.MaskFunction.apply(w, mask), (orig,))
