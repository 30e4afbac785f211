"""`zoo env` and the fast path's one-line fallback when a native kernel cannot be built."""
import os
import subprocess
import sys

import pytest

from zoo.cli import main
from zoo.inference import native


def test_kernels_build_into_the_test_sessions_cache():
    assert os.path.basename(os.environ["ZOO_CACHE_DIR"]).startswith("zoo-test-kernels-")
    assert str(native.library_dir()).startswith(os.environ["ZOO_CACHE_DIR"])


def test_env_report(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    for key in ("zoo", "python", "torch", "cpu", "cpu features", "torch threads", "compiler", "kernel cache"):
        assert lines[key], key
    assert lines["kernel cache"].startswith(str(native.library_dir()))
    assert lines["native memory cache"] == "built" and lines["native winograd"] == "built"


_FAST_PATH = ("import torch, zoo; m = zoo.build('r2plus1d_18', num_classes=3).eval(); "
              "zoo.optimize(m, layout='channels_last')(torch.randn(1, 3, 4, 32, 32)); print('ran')")


@pytest.mark.slow
def test_fallback_is_one_line_each(tmp_path):
    """Without a compiler the fast path still runs, saying once per kernel that it runs without it."""
    env = {**os.environ, "CXX": "no-such-compiler", "ZOO_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _FAST_PATH], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ran", proc.stderr
    said = [line for line in proc.stderr.splitlines() if "the fast path runs without" in line]
    assert len(said) == 2, proc.stderr
    assert any("memory cache" in line for line in said) and any("Winograd" in line for line in said)
    assert all("no C++ compiler 'no-such-compiler'" in line for line in said)
    env_out = subprocess.run([sys.executable, "-m", "zoo", "env"], capture_output=True, text=True, env=env,
                             timeout=300).stdout
    assert "native winograd: NOT built" in env_out and "no-such-compiler" in env_out
