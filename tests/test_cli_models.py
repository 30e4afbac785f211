"""`zoo list / info / flops` and the command line's error handling."""
import subprocess
import sys

import pytest

from zoo.cli import main


def test_list_and_pattern(capsys):
    assert main(["list", "tsm_*"]) == 0
    assert capsys.readouterr().out.split() == ["tsm_r50", "tsm_r101"]
    assert main(["list", "nothing*"]) == 2  # like every error: one line on stderr
    err = capsys.readouterr().err.strip()
    assert "no model matches 'nothing*'" in err and len(err.splitlines()) == 1


def test_info_shows_protocol_and_results(capsys):
    assert main(["info", "tsm_r50"]) == 0
    out = capsys.readouterr().out
    assert "num_segments: 8" in out and "[3, 8, 224, 224]" in out and "something-something-v2: top-1" in out


def test_flops_prints_table_total_convention_and_shape(capsys):
    assert main(["flops", "tsn_r50", "--frames", "2", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "| module" in out and "backbone" in out
    assert "input: [1, 3, 2, 64, 64]" in out
    assert "1 multiply-add = 1 FLOP" in out
    total = float(out.split("total: ")[1].split()[0])
    # ResNet-50 at 64 px is (64/224)^2 of its 224 px cost per frame; 2 frames instead of 8
    assert total == pytest.approx(32.88 * (64 / 224) ** 2 * 2 / 8, rel=0.02)


def test_unknown_model_is_one_line_exit_2(capsys):
    assert main(["info", "slowfst_r50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model 'slowfst_r50'" in err


def test_console_script_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True, check=True)
    assert "list" in out.stdout and "flops" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "zoo", "flops", "tsm_r50", "--frames", "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid int value" in bad.stderr
