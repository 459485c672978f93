"""Every experiment's ``--quick`` run holds its claim and writes the TensorBoard run it promises.

One parametrised test: run the experiment into a temporary logdir, apply its entry of CHECKS to
the measured figures, and read the event file back with TensorBoard's EventAccumulator to find
its figure (an image), a few named scalar curves, and every figure as a ``result/<key>`` scalar.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from manualgrad.experiments import EXPERIMENTS, load, run_experiment

Figures = dict[str, float]


def check_zero_init(f: Figures) -> None:
    assert f["zeros_hidden_unit_spread"] <= 1e-12
    assert f["constant_hidden_unit_spread"] <= 1e-12
    assert f["random_hidden_unit_spread"] > 0.1
    assert f["random_val_accuracy"] > max(f["zeros_val_accuracy"], f["constant_val_accuracy"])


def check_linear_collapse(f: Figures) -> None:
    assert f["collapse_max_error"] <= 1e-6
    assert f["linear_xor_accuracy"] <= 0.75
    assert f["relu_xor_accuracy"] == 1.0


def check_step_activation(f: Figures) -> None:
    assert f["step_first_layer_max_grad_norm"] == 0.0
    assert f["step_first_layer_weight_change"] == 0.0
    assert f["ste_first_layer_max_grad_norm"] > 0.0
    assert f["ste_val_accuracy"] > f["step_val_accuracy"] + 0.1


def check_batch_modes(f: Figures) -> None:
    assert f["per_sample_sum_max_error"] <= 1e-6
    assert f["cosine_batch_1"] < f["cosine_batch_16"] < f["cosine_batch_128"]
    assert f["cosine_batch_128"] > 0.9
    assert f["single_loss_after_1_epoch"] < f["mini_loss_after_1_epoch"]
    assert f["mini_loss_after_1_epoch"] < f["full_loss_after_1_epoch"]
    assert f["mini_seconds_per_epoch"] < f["single_seconds_per_epoch"]


def check_optimizers(f: Figures) -> None:
    assert f["saddle_sgd_final_distance"] < 0.1  # stalled
    for escaped in ("momentum", "nesterov", "adam", "rmsprop"):
        assert f[f"saddle_{escaped}_final_distance"] > 1.0
    assert f["saddle_pure_newton_final_distance"] < 1e-9
    assert f["rosenbrock_newton_final_distance"] < 1e-6
    first_order = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
    assert f["digits_newton_final_loss"] < min(f[f"digits_{m}_final_loss"] for m in first_order)


def check_regularization(f: Figures) -> None:
    (lam,) = {key.split("_")[1] for key in f if key.startswith("l1_")}
    assert f[f"l2_{lam}_sparsity"] == 0.0
    assert f[f"l1_{lam}_sparsity"] > 0.05
    assert f[f"l2_{lam}_mean_abs_weight"] < f["none_mean_abs_weight"]


def check_early_stopping(f: Figures) -> None:
    assert f["best_epoch"] < f["stop_signal_epoch"] <= f["last_epoch"]
    assert f["best_val_loss"] < f["final_val_loss"]


def check_prune_recover(f: Figures) -> None:
    assert f["pruned_80_val_accuracy"] < f["dense_val_accuracy"] - 0.05
    assert f["recovered_80_val_accuracy"] >= f["dense_val_accuracy"] - 0.02
    for percent in (50, 80, 90):
        assert f[f"recovered_{percent}_sparsity"] == pytest.approx(percent / 100, abs=1e-3)


def check_init_scale(f: Figures) -> None:
    assert 0.3 <= f["relu_he_last_std"] <= 3
    assert 0.3 <= f["tanh_xavier_last_std"] <= 3
    assert f["relu_normal_last_std"] > 1e3  # explodes
    assert f["relu_xavier_last_std"] < 0.1  # halves per layer
    assert f["tanh_normal_saturated_fraction"] > 0.5


def check_skip_connections(f: Figures) -> None:
    assert f["residual_over_plain_first_layer"] > 10


def check_hinge_vs_ce(f: Figures) -> None:
    robust = min(f["blobs_hinge_test_accuracy"], f["blobs_logistic_test_accuracy"])
    assert f["blobs_squared_test_accuracy"] < robust - 0.02
    margin = f["digits_hinge_min_geometric_margin"]
    assert margin > f["digits_logistic_min_geometric_margin"]
    assert margin > f["digits_squared_min_geometric_margin"]
    assert f["digits_hinge_support_vector_fraction"] < 0.2


# name: (claim check, figure image tag, scalar curves it logs)
EXPECTED: dict[str, tuple[Callable[[Figures], None], str, tuple[str, ...]]] = {
    "zero-init": (check_zero_init, "first_layer_weights", ("val_accuracy/zeros",)),
    "linear-collapse": (check_linear_collapse, "xor_loss", ("xor_loss/linear", "xor_loss/relu")),
    "step-activation": (
        check_step_activation,
        "step_vs_ste",
        ("val_accuracy/step", "first_layer_grad_norm/ste"),
    ),
    "batch-modes": (
        check_batch_modes,
        "batch_modes",
        ("loss_vs_epoch/single", "loss_vs_ms/mini", "grad_cosine_vs_batch"),
    ),
    "optimizers": (
        check_optimizers,
        "optimizers",
        ("digits_loss/newton", "saddle_value/adam", "rosenbrock_value/lbfgs"),
    ),
    "regularization": (check_regularization, "weights_and_sparsity", ("val_accuracy/none",)),
    "early-stopping": (check_early_stopping, "early_stopping", ("train_loss", "val_loss")),
    "prune-recover": (
        check_prune_recover,
        "prune_recover",
        ("dense/val_accuracy", "recovery_val_accuracy/80"),
    ),
    "init-scale": (check_init_scale, "activation_std", ("activation_std/relu/he",)),
    "skip-connections": (
        check_skip_connections,
        "grad_norm_by_layer",
        ("grad_norm_by_layer/plain", "grad_norm_by_layer/residual"),
    ),
    "hinge-vs-ce": (check_hinge_vs_ce, "hinge_vs_ce", ()),
}


def test_every_experiment_is_checked() -> None:
    assert set(EXPECTED) == set(EXPERIMENTS)
    for name in EXPERIMENTS:
        assert load(name).CLAIM


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_run_holds_its_claim(name: str, tmp_path) -> None:
    check, image, curves = EXPECTED[name]
    figures, log = run_experiment(name, quick=True, logdir=str(tmp_path))
    check(figures)
    events = EventAccumulator(str(log.path), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert image in tags["images"]
    expected_scalars = {*curves, *(f"result/{key}" for key in figures)}
    assert expected_scalars <= set(tags["scalars"])
