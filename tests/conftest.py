import os
import shutil
import tempfile

import pytest
import torch

# The native kernels (memory cache, Winograd) are built into a directory of this test session,
# never the user's cache; child processes inherit it.
_KERNELS = tempfile.mkdtemp(prefix="zoo-test-kernels-")
os.environ["ZOO_CACHE_DIR"] = _KERNELS


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_KERNELS, ignore_errors=True)

# Tests run on 2 cores next to other processes; keep each test single-threaded and repeatable.
torch.set_num_threads(max(1, min(2, int(os.environ.get("ZOO_TEST_THREADS", "2")))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
