"""Build of manualgrad's C++ extension, ``manualgrad._C`` (the compiled eager path: the twins in
manualgrad/csrc/, loaded by manualgrad/_ext.py). Metadata lives in pyproject.toml.

``make`` builds it by default, as the second step of bootstrapping .venv: ``pip install -e
'.[test,ext]'`` first installs the package and torch (plain ``setup()``, nothing compiled), then
``MANUALGRAD_BUILD_EXT=1 MAX_JOBS=2 python setup.py build_ext --inplace`` compiles every
``csrc/*.cpp`` with torch's ``BuildExtension`` and ninja (pinned in pyproject's ``[ext]`` extra,
which the bootstrap installs), as two translation units (:func:`_units`); it runs again whenever a
``csrc/*.cpp`` or ``*.h`` file changes, and ninja then recompiles only the units that include
what changed. Torch is a build dependency of the extension only, which is why the build is a
second step with the venv's torch rather than part of ``pip install``.

The extension is optional: without a C++ compiler, or when compiling fails, the build reports it in
one message, removes a stale in-place ``_C*.so`` (so sources and binary never disagree), and
goes on without it; ``manualgrad`` then runs the Python Functions. ``MANUALGRAD_NO_EXT=1`` at
import time ignores a built extension.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from setuptools import setup

BUILD_EXTENSION = os.environ.get("MANUALGRAD_BUILD_EXT") == "1"
if BUILD_EXTENSION:  # torch is a build dependency of the extension only
    from torch.utils.cpp_extension import BuildExtension, CppExtension

CSRC = Path("manualgrad/csrc")
FIRST_UNIT = (
    "activations",
    "arithmetic",
    "embedding",
    "pooling",
    "products",
    "reductions",
    "softmax",
)
"""The family files compiled as the first of two translation units (about half of the compile
time: the activations' templates alone are a third); every other ``csrc/*.cpp`` is the second."""


def _units() -> list[str]:
    """The sources handed to the compiler: two translation units, ``build/unity/first.cpp`` and
    ``second.cpp``, each ``#include``-ing its family files (a unity build). Every family file pays
    ~13 s of its 20-60 s parsing ATen's and autograd's headers; two units pay it twice instead of
    fourteen times, so a fresh build on 2 cores (MAX_JOBS=2) took 1.5 min of wall time instead
    of ~4 (2.5 min of CPU instead of 7.7). ninja's dependency files list the included files, so
    editing one family rebuilds its unit; a unit's text is rewritten only when its list changes."""
    families = sorted(CSRC.glob("*.cpp"))
    first = [path for path in families if path.stem in FIRST_UNIT]
    units = {"first": first, "second": [path for path in families if path not in first]}
    folder = Path("build/unity")
    folder.mkdir(parents=True, exist_ok=True)
    for name, paths in units.items():
        text = "".join(f'#include "{path.resolve()}"\n' for path in paths)
        unit = folder / f"{name}.cpp"
        if not unit.exists() or unit.read_text() != text:
            unit.write_text(text)
    return [str(folder / f"{name}.cpp") for name in units]


def _compile_flags() -> list[str]:
    """``-g0`` (Python's own CFLAGS add ``-g``: debug info for ATen's templates made a family file
    1.7× slower to compile and the library 20× larger) and ``-O3``; AVX-512 or AVX2 + FMA code
    (ATen's Vectorized, SLEEF's exp/erf/tanh from libtorch: the widest the building machine has,
    as torch's own kernels pick at run time), else ATen's portable Vectorized; contraction off so
    a*b + c rounds as torch's kernels round it."""
    flags = ["-g0", "-O3", "-ffp-contract=off"]
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() in ("x86_64", "AMD64") and cpuinfo.exists():
        words = set(cpuinfo.read_text().split())
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"} <= words:
            flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
            flags += ["-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"]
        elif {"avx2", "fma"} <= words:
            flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


def _openmp_flags() -> list[str]:
    """``-fopenmp`` where torch's intra-op threads are OpenMP's (its Linux wheels), to compile and
    to link: ATen's ``at::parallel_for`` is an inline ``#pragma omp parallel``
    (ATen/ParallelOpenMP.h), which without the flag compiles to a serial loop, so the twins' row
    and window loops would run on one thread where torch's kernels split the work. The extension
    then calls the libgomp torch has loaded (the same soname), so ``torch.set_num_threads``
    governs its threads too."""
    import torch.backends.openmp

    return ["-fopenmp"] if torch.backends.openmp.is_available() and sys.platform == "linux" else []


def _optional_build(base: type) -> type:
    """``base`` (torch's ``BuildExtension``) made to skip a failed optional extension."""

    class OptionalBuildExtension(base):
        """``BuildExtension`` that, for extensions marked ``optional``, reports a failed build (no
        compiler, a compile or link error, a ninja failure), removes what an earlier build left in
        place, and goes on without the extension."""

        def build_extensions(self) -> None:
            """Build, or skip the optional extensions with one message if that fails."""
            try:
                super().build_extensions()
            except Exception as error:  # any failure: the Python path still works
                if not all(ext.optional for ext in self.extensions):
                    raise
                for ext in self.extensions:  # the built and the in-place copy (--inplace)
                    for path in (self.get_ext_fullpath(ext.name), self.get_ext_filename(ext.name)):
                        Path(path).unlink(missing_ok=True)
                print(
                    f"manualgrad: building the C++ extension failed ({error}); "
                    "installing without it (the Python Functions will run)",
                    file=sys.stderr,
                )

    return OptionalBuildExtension


if BUILD_EXTENSION:
    EXTENSION = CppExtension(
        "manualgrad._C",
        _units(),
        depends=sorted(str(path) for path in CSRC.glob("*.h")),  # a header change rebuilds
        extra_compile_args=_compile_flags() + _openmp_flags(),
        extra_link_args=_openmp_flags(),
        optional=True,
    )
    setup(ext_modules=[EXTENSION], cmdclass={"build_ext": _optional_build(BuildExtension)})
else:
    setup()
