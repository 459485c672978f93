"""Shared set-up: one intra-op thread per test process, and the same RNG state for every test.

``make test`` runs ``pytest -n 2`` on a 2-core machine: two workers with torch's default of two
threads each would oversubscribe the cores and make the small tensors of the test matrix several
times slower.
"""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
