"""``memory`` suite: bytes saved for backward and peak memory of every registry op vs native.

Both numbers are deterministic (no allocator or OS noise), so they need no repeats.

- ``saved_bytes``: the distinct storages autograd keeps between forward and backward
  (:func:`manualgrad.testing.memory.saved_bytes`, ``saved_tensors_hooks``, each storage once).
- ``attention`` rows (issue 12's targets): peak fwd+bwd of manualgrad's blocked attention against
  torch's CPU flash kernel (``peak_bytes``) and its math path (``peak_vs_math``), causal and not,
  at 2×4×1024×64, with the time against flash; causal at 1×8×4096×64 (flash only: the math
  path would need about 3 GiB); and the peak of a whole GPT-style training step
  (:mod:`manualgrad.bench.train`'s ``gpt``, after the warm-up step that creates AdamW's state).
- ``peak_bytes``: the high-water mark of *live tensor storage bytes allocated inside the measured
  call* — forward, backward and the gradients it returns. :class:`PeakMemory` is a
  ``TorchDispatchMode`` that sees every tensor an aten op returns, counts each new storage once
  (views and in-place results share their input's storage and are not new) and subtracts it when
  the storage is freed (a weak reference's callback). It is what a device allocator's
  ``max_memory_allocated`` would report above the inputs, without its rounding and caching, on
  any device; tensors that existed before the call (inputs, parameters, optimizer state) are not
  counted, and neither is scratch memory a kernel allocates internally (e.g. a matmul's packing
  buffers), which is the same for both sides, nor meta tensors (shapes only, used for checks).

``tracemalloc`` cannot be used (torch allocates outside Python's allocator) and a process's RSS
is blurred by the C allocator keeping freed pages.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as TF
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import manualgrad.functional as F
from manualgrad.bench.inputs import make
from manualgrad.bench.ops import compare, forward_backward, output_grads
from manualgrad.bench.rows import Row
from manualgrad.testing.entries import OPS
from manualgrad.testing.memory import saved_bytes
from manualgrad.testing.registry import OpInfo, Sample


class PeakMemory(TorchDispatchMode):
    """Track live bytes of the storages allocated by aten ops run inside the ``with`` block.

    ``current`` is the bytes of those storages still alive, ``peak`` its maximum so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[int, int] = {}
        self._refs: dict[int, weakref.ref] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        inputs = {_storage_key(t) for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)}
        for tensor in tree_leaves(output):
            if isinstance(tensor, Tensor):
                self._allocated(tensor, inputs)
        return output

    def _allocated(self, tensor: Tensor, inputs: set[int]) -> None:
        if tensor.is_meta:  # shape-only: no memory behind it (its storage reports nbytes)
            return
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in inputs or key in self._live:
            return
        self._live[key] = size
        self._refs[key] = weakref.ref(storage, lambda _, key=key: self._freed(key))
        self.current += size
        self.peak = max(self.peak, self.current)

    def _freed(self, key: int) -> None:
        self.current -= self._live.pop(key)
        del self._refs[key]


def _storage_key(tensor: Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak live bytes of the tensor storages allocated while ``fn()`` runs (see module doc)."""
    with PeakMemory() as tracker:
        fn()
    return tracker.peak


def saved_pair(op: OpInfo, sample: Sample) -> tuple[int, int]:
    """Bytes saved for backward by (manualgrad, native) on fresh leaves of ``sample``."""

    def saved(fn: Callable[..., object]) -> int:
        args = sample.prepared()
        return saved_bytes(lambda: fn(*args, **sample.kwargs))

    return saved(op.op), saved(op.reference)


def op_rows(op: OpInfo, size: str) -> list[Row]:
    """``saved_bytes`` and ``peak_bytes`` rows of one registry op at one size."""
    sample = make(op.name, size)
    grads = output_grads(op, sample)
    peaks = [peak_bytes(forward_backward(fn, sample, grads)) for fn in (op.op, op.reference)]
    return [
        Row("memory", op.name, size, "saved_bytes", *saved_pair(op, sample)),
        Row("memory", op.name, size, "peak_bytes", *peaks),
    ]


def _attention_step(fn: Callable[..., Tensor], shape: tuple[int, ...], causal: bool) -> Callable:
    """Forward + backward of ``fn`` on seeded float32 (B, H, L, D) query, key and value."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
        grad = torch.randn(shape)
    return lambda: torch.autograd.grad(fn(q, k, v, is_causal=causal), (q, k, v), grad)


def _math_attention(*args: Tensor, **kwargs: object) -> Tensor:
    """torch's SDPA restricted to its math path (the autograd composite)."""
    with sdpa_kernel(SDPBackend.MATH):
        return TF.scaled_dot_product_attention(*args, **kwargs)


def attention_rows(quick: bool) -> list[Row]:
    """Issue 12's rows (module docstring); quick runs use 1×2×128×16 and 1×2×256×16."""
    medium, long = (
        ((1, 2, 128, 16), (1, 2, 256, 16)) if quick else ((2, 4, 1024, 64), (1, 8, 4096, 64))
    )
    rows = []
    for shape, causal in ((medium, False), (medium, True), (long, True)):
        name = "attention_causal" if causal else "attention"
        size = "x".join(map(str, shape))
        ours = _attention_step(F.scaled_dot_product_attention, shape, causal)
        native = _attention_step(TF.scaled_dot_product_attention, shape, causal)
        rows.append(Row("memory", name, size, "peak_bytes", peak_bytes(ours), peak_bytes(native)))
        if shape == medium:
            math_peak = peak_bytes(_attention_step(_math_attention, shape, causal))
            rows.append(Row("memory", name, size, "peak_vs_math", peak_bytes(ours), math_peak))
            rows.append(
                compare("memory", name, size, {"manualgrad": ours, "native": native}, quick)
            )
    return rows


def gpt_step_row(quick: bool) -> Row:
    """Peak of one GPT-style training step (after a warm-up step), manualgrad vs native."""
    from manualgrad.bench.train import MODELS

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ours, native, size = MODELS["gpt"](quick)
    ours(), native()
    return Row("memory", "gpt_train_step", size, "peak_bytes", peak_bytes(ours), peak_bytes(native))


def run(quick: bool) -> list[Row]:
    """Two rows per registry op, at the medium size (small when ``quick``), then the attention
    rows and the GPT-style step."""
    size = "small" if quick else "medium"
    rows = [row for op in OPS for row in op_rows(op, size)]
    return [*rows, *attention_rows(quick), gpt_step_row(quick)]
