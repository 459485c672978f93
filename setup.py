"""Build of manualgrad's optional C++ extension, ``manualgrad._C`` (the compiled eager path; see
manualgrad/_ext.py). Metadata lives in pyproject.toml.

For now the extension is built on request only (``make ext``, or ``MANUALGRAD_BUILD_EXT=1``
with torch installed and ``--no-build-isolation``): one translation unit takes 2-6 minutes on the
project's shared 2-core machine, too much for the first ``make test``. It is optional: without a
C++ compiler, or when compiling fails, the build reports it and goes on without it, and
``manualgrad`` runs the Python Functions (``MANUALGRAD_NO_EXT=1`` at import time ignores a built
extension).
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


def _vector_flags() -> list[str]:
    """AVX-512 or AVX2 + FMA code (ATen's Vectorized, SLEEF's exp/erf/tanh from libtorch: the
    widest the building machine has, as torch's own kernels pick at run time), else ATen's
    portable Vectorized; contraction off so a*b + c rounds as torch's kernels round it."""
    flags = ["-O3", "-ffp-contract=off"]
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() in ("x86_64", "AMD64") and cpuinfo.exists():
        words = set(cpuinfo.read_text().split())
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"} <= words:
            flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
            flags += ["-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"]
        elif {"avx2", "fma"} <= words:
            flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


def _optional_build(base: type) -> type:
    """``base`` (torch's ``BuildExtension``) made to skip a failed optional extension."""

    class OptionalBuildExtension(base):
        """``BuildExtension`` that, for extensions marked ``optional``, reports a failed build (no
        compiler, a compile or link error, a ninja failure) and goes on without the extension."""

        def build_extensions(self) -> None:
            """Build, or skip the optional extensions with one message if that fails."""
            try:
                super().build_extensions()
            except Exception as error:  # any failure: the Python path still works
                if not all(ext.optional for ext in self.extensions):
                    raise
                print(
                    f"manualgrad: building the C++ extension failed ({error}); "
                    "installing without it (the Python Functions will run)",
                    file=sys.stderr,
                )

    return OptionalBuildExtension


if BUILD_EXTENSION:
    EXTENSION = CppExtension(
        "manualgrad._C",
        sorted(str(path) for path in Path("manualgrad/csrc").glob("*.cpp")),
        extra_compile_args=_vector_flags(),
        optional=True,
    )
    setup(ext_modules=[EXTENSION], cmdclass={"build_ext": _optional_build(BuildExtension)})
else:
    setup()
