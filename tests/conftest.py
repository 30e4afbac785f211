import os

import pytest
import torch

# Tests run on 2 cores next to other processes; keep each test single-threaded and repeatable.
torch.set_num_threads(max(1, min(2, int(os.environ.get("ZOO_TEST_THREADS", "2")))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
