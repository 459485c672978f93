"""What TensorBoard shows about backpropagation, and the writers that put it there.

A run directory ``runs/<YYYYmmdd-HHMMSS>-<name>/`` holds four TensorBoard runs:

- ``train/`` and ``val/``: the tags ``loss`` and ``accuracy``, so the two curves overlay on one
  chart per tag;
- ``model/``: the same two tags, one point: the validation metrics of the weights ``model.pt``
  holds, at their epoch's step (the last epoch, or the one early stopping restored);
- the run directory itself: everything else (all x-axes are the optimizer step):

  ============================  ============================================================
  ``lr/group<k>``               learning rate of each parameter group
  ``grad_norm/<layer>``         ‖∂L/∂θ‖ over the layer's parameters (weight and bias together)
  ``weight_norm/<layer>``       ‖θ‖
  ``update_ratio/<layer>``      ‖Δθ‖ / ‖θ‖ for the step actually taken (healthy: ~1e-3)
  ``activation_mean/<act>``     mean of the activation's output on the batch
  ``activation_std/<act>``      its standard deviation
  ``dead_relu/<act>``           fraction of ReLU units that are 0 on every sample of the batch
  ``saturated/<act>``           fraction of sigmoid outputs outside [0.01, 0.99] / tanh
                                outputs with |y| > 0.99 (where φ' ≈ 0 and learning stalls)
  ``penalty``                   l1·‖W‖₁ + l2·½‖W‖² when ``--l1``/``--l2`` are set
  ``check/max_grad_diff``       max |manualgrad − autograd| gradient on the probe batch
  ``weights/…`` ``grads/…``     histograms per parameter, and ``activations/<act>`` on the
                                probe batch, every ``--hist-interval`` epochs (non-finite
                                values dropped, so a diverging run still logs)
  hparams                       the configuration, the run's ``outcome`` (budget, converged,
                                early_stopping, interrupted, non-finite loss) and as metrics
                                the last ``val``/``train`` values and ``model``'s (above)
  images ``results/…``          at the end: the confusion matrix on the validation set with
                                misclassified examples, and for image data the first layer's
                                weights, one image per unit
  graph, text ``model``         the traced model graph, and the module's ``repr`` as text
                                (the graph is skipped, with a note in the text, if tracing fails)
  text ``config``               the ``config.json`` of the run
  ============================  ============================================================

Per-step diagnostics are recorded every ``--log-interval`` optimizer steps; the writers are
flushed at the end of every epoch.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from manualgrad.conversion import to_torch

_EPS = 1e-12
# HPARAMS metrics: (sub-run, tag, column title), each the last value of that sub-run's curve
METRICS = (
    ("model", "accuracy", "model.pt val accuracy"),
    ("model", "loss", "model.pt val loss"),
    ("val", "accuracy", "last val accuracy"),
    ("train", "loss", "last train loss"),
)
STATUS = {"interrupted": "STATUS_UNKNOWN", "non-finite loss": "STATUS_FAILURE"}
_HPARAM_TYPE = {
    bool: "DATA_TYPE_BOOL",
    int: "DATA_TYPE_FLOAT64",
    float: "DATA_TYPE_FLOAT64",
    str: "DATA_TYPE_STRING",
}


def max_grad_diff(
    model: torch.nn.Module, loss_fn: torch.nn.Module, x: Tensor, target: Tensor
) -> float:
    """``check/max_grad_diff``: live proof that the hand-derived backward passes agree with
    torch autograd during training. On the probe batch, the loss gradient with respect to every
    parameter is computed twice, through manualgrad's Functions and through the torch twin
    (:func:`manualgrad.conversion.to_torch`), and the result is

        max over parameters p, entries i of |∂L/∂pᵢ (manualgrad) − ∂L/∂pᵢ (torch autograd)|.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    twin, twin_loss = to_torch(model), to_torch(loss_fn)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    manual = torch.autograd.grad(loss_fn(model(x), target), params)
    reference = torch.autograd.grad(twin_loss(twin(x), target), twin_params)
    return max((a - b).abs().max().item() for a, b in zip(manual, reference, strict=True))


def parameter_layers(model: torch.nn.Module) -> dict[str, list[Tensor]]:
    """``{module name: its own parameters}`` for every module that holds parameters."""
    layers = {}
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if params:
            layers[name] = params
    return layers


def _norm(tensors: list[Tensor]) -> float:
    return torch.sqrt(sum((t.detach().double() ** 2).sum() for t in tensors)).item()


def snapshot(model: torch.nn.Module) -> dict[str, list[Tensor]]:
    """Copies of every layer's parameters, taken before a step to measure the update."""
    return {name: [p.detach().clone() for p in ps] for name, ps in parameter_layers(model).items()}


def layer_stats(model: torch.nn.Module, before: dict[str, list[Tensor]]) -> dict[str, float]:
    """``grad_norm``, ``weight_norm`` and ``update_ratio`` per layer (tags as in the module
    docstring); ``before`` is the :func:`snapshot` taken before the step."""
    stats = {}
    for name, params in parameter_layers(model).items():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            stats[f"grad_norm/{name}"] = _norm(grads)
        stats[f"weight_norm/{name}"] = _norm(params)
        step = [p.detach() - old for p, old in zip(params, before[name], strict=True)]
        stats[f"update_ratio/{name}"] = _norm(step) / (_norm(before[name]) + _EPS)
    return stats


def activation_stats(name: str, module: torch.nn.Module, output: Tensor) -> dict[str, float]:
    """Mean, std and the dead/saturated fraction of one activation's output on a batch."""
    y = output.detach().double().reshape(len(output), -1)
    stats = {
        f"activation_mean/{name}": y.mean().item(),
        f"activation_std/{name}": y.std(correction=0).item(),
    }
    if isinstance(module, torch.nn.ReLU):
        stats[f"dead_relu/{name}"] = 1.0 - (y > 0).any(0).double().mean().item()
    elif isinstance(module, torch.nn.Sigmoid):
        stats[f"saturated/{name}"] = ((y < 0.01) | (y > 0.99)).double().mean().item()
    elif isinstance(module, torch.nn.Tanh):
        stats[f"saturated/{name}"] = (y.abs() > 0.99).double().mean().item()
    return stats


class ActivationMonitor:
    """Forward hooks on the activation modules (every parameter-free child that is not a
    Linear) that, while :meth:`recording`, keep the statistics of their latest output."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.modules = {
            name: module
            for name, module in model.named_children()
            if not isinstance(module, torch.nn.Linear)
        }
        self.stats: dict[str, float] = {}
        self.outputs: dict[str, Tensor] = {}
        self._active = False
        self._keep_outputs = False
        for name, module in self.modules.items():
            module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, inputs: tuple, output: Tensor) -> None:
            if self._active:
                self.stats.update(activation_stats(name, module, output))
                if self._keep_outputs:
                    self.outputs[name] = output.detach()

        return hook

    @contextmanager
    def recording(self, keep_outputs: bool = False) -> Iterator[None]:
        """Record statistics (and, if asked, the outputs) of forwards run inside the block."""
        self.stats, self.outputs = {}, {}
        self._active, self._keep_outputs = True, keep_outputs
        try:
            yield
        finally:
            self._active = self._keep_outputs = False


def _finite(values: Tensor) -> Tensor:
    values = values.detach().flatten().float().cpu()
    return values[torch.isfinite(values)]


def _wait_past_existing_event_files(run_dir: Path) -> None:
    """Sleep until the wall clock is past the newest event file's second under ``run_dir``.

    TensorBoard reads a run's event files in name order, and a name is
    ``events.out.tfevents.<seconds>.<host>.<pid>.<counter>``: within one second a resumed
    writer's file can sort *before* the original (counter ``10`` < ``9``), and its events would
    be read first, then purged as orphans. A strictly later second always sorts after.
    """
    seconds = [int(f.name.split(".")[3]) for f in run_dir.rglob("events.out.tfevents.*")]
    if seconds:
        time.sleep(max(0.0, max(seconds) + 1 - time.time()))


class RunLogger:
    """The TensorBoard writers of one run directory (see the module docstring for the tags)."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        self.run_dir = run_dir
        if purge_step is not None:
            _wait_past_existing_event_files(run_dir)
        self.main = SummaryWriter(str(run_dir), purge_step=purge_step)
        self.splits = {
            split: SummaryWriter(str(run_dir / split), purge_step=purge_step)
            for split in ("train", "val")
        }
        self.purge_step = purge_step

    def scalars(self, values: dict[str, float], step: int) -> None:
        """``add_scalar`` for each tag in the main run."""
        for tag, value in values.items():
            self.main.add_scalar(tag, value, step)

    def split_metrics(self, split: str, loss: float, accuracy: float, step: int) -> None:
        """``loss`` and ``accuracy`` in the ``train``, ``val`` or ``model`` sub-run (the last
        one's writer is opened on first use)."""
        if split not in self.splits:
            self.splits[split] = SummaryWriter(str(self.run_dir / split))
        self.splits[split].add_scalar("loss", loss, step)
        self.splits[split].add_scalar("accuracy", accuracy, step)

    def histograms(self, model: torch.nn.Module, activations: dict[str, Tensor], step: int) -> None:
        """Weights, gradients and activations; non-finite entries are dropped (an all
        non-finite tensor is skipped)."""
        tensors = {}
        for name, p in model.named_parameters():
            tensors[f"weights/{name}"] = p
            if p.grad is not None:
                tensors[f"grads/{name}"] = p.grad
        tensors.update({f"activations/{name}": y for name, y in activations.items()})
        for tag, tensor in tensors.items():
            values = _finite(tensor)
            if values.numel():
                self.main.add_histogram(tag, values, step)

    def model(self, model: torch.nn.Module, example: Tensor) -> None:
        """The model's ``repr`` as text, and its graph when ``torch.jit.trace`` can trace it."""
        note = ""
        try:
            with warnings.catch_warnings():  # torch.jit.trace is deprecated but still works
                warnings.simplefilter("ignore", DeprecationWarning)
                self.main.add_graph(model, example)
        except Exception as error:  # tracing support for custom Functions varies by version
            note = f"\n\n(graph not traced: {type(error).__name__}: {error})"
        self.main.add_text("model", f"```\n{model}\n```{note}", 0)

    def config(self, config: dict[str, Any]) -> None:
        """The configuration as text."""
        self.main.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```", 0)

    def hparams(self, params: dict[str, Any], outcome: str, group: str) -> None:
        """The HPARAMS entry in *this* run (``SummaryWriter.add_hparams`` would open a
        timestamped sub-run): ``params`` with their own types (booleans as booleans) and the
        ``outcome`` column (``budget``, ``converged``, ``early_stopping``, ``interrupted``,
        ``non-finite loss``; the session status is success, unknown: interrupted, resumable,
        or failure), the session ``group`` (the run directory's name) and, as metrics, the last
        ``loss``/``accuracy`` of the sub-runs in :data:`METRICS` (no scalar charts of their
        own)."""
        params = {**params, "outcome": outcome}
        clean = {
            k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in params.items()
        }
        infos = [
            api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(_HPARAM_TYPE[type(v)]))
            for k, v in clean.items()
        ]
        metrics = [
            api_pb2.MetricInfo(name=api_pb2.MetricName(group=split, tag=tag), display_name=shown)
            for split, tag, shown in METRICS
        ]
        start = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=time.time())
        for key, value in clean.items():
            field = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
            setattr(start.hparams[key], field, value)
        status = api_pb2.Status.Value(STATUS.get(outcome, "STATUS_SUCCESS"))
        for tag, data in (
            (
                hp_metadata.EXPERIMENT_TAG,
                {"experiment": api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)},
            ),
            (hp_metadata.SESSION_START_INFO_TAG, {"session_start_info": start}),
            (
                hp_metadata.SESSION_END_INFO_TAG,
                {
                    "session_end_info": plugin_data_pb2.SessionEndInfo(
                        status=status, end_time_secs=time.time()
                    )
                },
            ),
        ):
            content = plugin_data_pb2.HParamsPluginData(
                version=hp_metadata.PLUGIN_DATA_VERSION, **data
            ).SerializeToString()
            plugin = SummaryMetadata.PluginData(
                plugin_name=hp_metadata.PLUGIN_NAME, content=content
            )
            value = Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))
            self.main.file_writer.add_summary(Summary(value=[value]))

    def figures(
        self,
        model: torch.nn.Module,
        x: Tensor,
        y: Tensor,
        image_shape: tuple[int, ...] | None,
        step: int,
    ) -> None:
        """The closing images: ``results/confusion_matrix`` of ``model`` on (x, y) with the
        misclassified examples beside it (as images when ``image_shape`` is given), and
        ``results/first_layer_weights`` (each unit's incoming weights as an image)."""
        from manualgrad.train.figures import confusion_figure, weights_figure

        model.eval()
        with torch.no_grad():
            predicted = model(x).argmax(1)
        self.main.add_figure(
            "results/confusion_matrix", confusion_figure(predicted, y, x, image_shape), step
        )
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        if image_shape is not None:
            self.main.add_figure(
                "results/first_layer_weights", weights_figure(first.weight, image_shape), step
            )

    def flush(self) -> None:
        """Write everything pending to disk."""
        for writer in (self.main, *self.splits.values()):
            writer.flush()

    def close(self) -> None:
        """Flush and close all writers."""
        for writer in (self.main, *self.splits.values()):
            writer.close()
