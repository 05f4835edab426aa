"""One torch thread for the reliability tests' short fits.

On tiny batches several OpenMP threads mostly wait for each other, and on a shared machine
they make a two-epoch fit five times slower. One thread also makes the subprocess runs of
`test_faults.py` sum in the same order as the in-process runs they are compared with.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
