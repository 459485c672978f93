"""``manualgrad._ext.eligible``: the compiled test of a call's arguments
(``manualgrad._C.eligible_arguments``) answers as its Python reference
(``_ext.eligible_arguments``) for every kind of argument the eager path must refuse or accept."""

from __future__ import annotations

import pytest
import torch

from manualgrad import _ext

needs_extension = pytest.mark.skipif(
    not hasattr(_ext.EXTENSION, "eligible_arguments"), reason="extension not built"
)


class _Sub(torch.Tensor):
    pass


def _argument_tuples() -> dict[str, tuple]:
    x = torch.randn(4, 3, requires_grad=True)
    targets = torch.randint(0, 3, (4,))
    with torch.inference_mode():
        inference = torch.randn(3)
    return {
        "one float32": (x,),
        "float32 and a parameter": (x, torch.nn.Parameter(torch.randn(3))),
        "loss arguments": (x, targets, None, "mean", -100, 0.0),
        "float64 and int32 indices": (x.double(), targets.int()),
        "uint8 and bool": (x, targets.to(torch.uint8), targets > 0),
        "an inference tensor": (inference,),
        "a non-contiguous view": (x.t(),),
        "indices only": (targets,),
        "no tensor": (1, 2.0, "sum", None),
        "empty": (),
        "mixed floating dtypes": (x, x.double()),
        "float16": (x.half(),),
        "bfloat16": (x.bfloat16(),),
        "complex": (torch.randn(3, dtype=torch.complex64),),
        "int16 indices": (x, targets.short()),
        "sparse": (x.detach().to_sparse(),),
        "meta": (torch.empty(3, device="meta"),),
        "a subclass": (torch.randn(3).as_subclass(_Sub),),
    }


@needs_extension
@pytest.mark.parametrize("low_precision", [False, True], ids=["float", "low_precision"])
@pytest.mark.parametrize("name", list(_argument_tuples()))
def test_compiled_test_answers_as_the_reference(name, low_precision):
    args = _argument_tuples()[name]
    compiled = _ext.EXTENSION.eligible_arguments(args, low_precision)
    assert compiled == _ext.eligible_arguments(args, low_precision)


@needs_extension
def test_compiled_test_under_transforms_and_autocast():
    x = torch.randn(2, 3)
    answers = []

    def record(t: torch.Tensor) -> torch.Tensor:
        answers.append((_ext.EXTENSION.eligible_arguments((t,)), _ext.eligible_arguments((t,))))
        return t.sum()

    torch.func.vmap(record)(x)
    torch.func.grad(record)(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        record(x)
    assert answers == [(False, False)] * 3


def test_eligible_is_off_inside_python_path():
    x = torch.randn(3)
    with _ext.python_path():
        assert not _ext.eligible((x,))
    assert _ext.eligible((x,))
