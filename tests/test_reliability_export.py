"""An export is one unit: the model file and its sidecar are staged, verified and renamed as a set;
the sidecar records the file's sha256 and the verification, so a reader tells a whole export from a
torn one. ``zoo export`` refuses an existing --out without --force, and ``--on-error skip`` skips
an unreadable calibration video. SIGKILL at each step of the commit."""
import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from zoo.cli import main
from zoo.inference.export import TornExport, read_export

from test_reliability import REPO, _one_line_error

pytest.importorskip("onnxruntime")

TINY = ["tsn_r50", "--format", "pt2", "--size", "32", "--frames", "2", "--model-arg", "backbone=resnet18"]


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _whole_without_zoo(out) -> bool:
    """What the Deploy page's no-zoo check sees: the file's sha256 is the sidecar's."""
    return _sha(out) == json.load(open(out + ".json"))["file"]["sha256"]


def test_the_sidecar_records_the_file_and_the_verification(tmp_path, capsys):
    out = str(tmp_path / "m.pt2")
    assert main(["export", *TINY, "--out", out]) == 0
    meta = read_export(out)
    assert meta["file"] == {"name": "m.pt2", "bytes": os.path.getsize(out), "sha256": _sha(out)}
    check = meta["verification"]
    assert check["ran"] and check["passed"] and check["runtime"] == "torch.export.load" and check["max_rel_dlogit"] <= 1e-4
    assert "sha256 " + meta["file"]["sha256"][:16] in capsys.readouterr().out
    # an existing --out is refused without --force, before any work
    assert main(["export", *TINY, "--out", out]) == 2
    _one_line_error(capsys, f"--out {out}: {out} and {out}.json exist(s): pass --force")
    assert main(["export", *TINY, "--out", out, "--force", "--no-verify"]) == 0
    assert read_export(out)["verification"] == {"ran": False}
    # a torn or replaced export is named as such
    with open(out, "ab") as f:
        f.write(b"\0")
    with pytest.raises(TornExport, match="is not the file .* describes .*torn or replaced export"):
        read_export(out)
    os.unlink(out + ".json")
    with pytest.raises(TornExport, match="has no sidecar"):
        read_export(out)


_KILL = """
import os, signal, sys
import zoo.inference.export as export
from zoo.cli import main
point, out = sys.argv[1], sys.argv[2]
real = os.replace
def kill():
    os.kill(os.getpid(), signal.SIGKILL)
if point == "verifying":  # the model file staged, being run in its runtime
    export.verify_export = lambda *a, **k: kill()
else:
    def replace(src, dst):
        if point == "journal" and dst == out:  # the journal written, no rename yet
            kill()
        real(src, dst)
        if point == "renamed" and dst == out:  # the model renamed, its sidecar not yet
            kill()
    os.replace = replace
main(["export", "tsn_r50", "--format", "pt2", "--size", "32", "--frames", "2", "--model-arg", "backbone=resnet18",
      "--model-arg", "dropout=0.5", "--out", out, "--force"])
"""


@pytest.mark.parametrize("point, state", [
    ("verifying", "old"),  # nothing of the new export is in place: the old pair stays whole
    ("journal", "old"),  # the set is decided but not renamed: old pair whole, the next reader completes it
    ("renamed", "torn"),  # the new file beside the old sidecar: the hash check says so
])
def test_a_killed_export_is_old_new_or_detectably_torn(point, state, tmp_path):
    out = str(tmp_path / "m.pt2")
    assert main(["export", *TINY, "--out", out, "--no-verify"]) == 0
    old = _sha(out)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", _KILL, point, out], env=env, cwd=REPO, capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-2000:]
    assert _whole_without_zoo(out) == (state == "old")
    assert (_sha(out) == old) == (state == "old")
    meta = read_export(out)  # completes a journal a killed commit left; removes the dead process's temporaries
    assert meta["file"]["sha256"] == _sha(out) and _whole_without_zoo(out)
    assert (_sha(out) == old) == (point == "verifying")  # once the journal exists, the new export wins
    assert sorted(os.listdir(tmp_path)) == ["m.pt2", "m.pt2.json"]


def test_int8_calibration_skips_an_unreadable_video_when_asked(tmp_path, capsys):
    from zoo.data import synth

    synth.generate(str(tmp_path / "d"), ["moving_right", "moving_left"], per_class=2, frames=8, size=32, seed=0)
    videos = sorted(str(p) for p in (tmp_path / "d").rglob("*.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    (tmp_path / "list.csv").write_text("".join(f"{v},{i % 2}\n" for i, v in enumerate([str(broken)] + videos)))
    out = str(tmp_path / "q.onnx")
    args = ["export", "tsn_r50", "--format", "onnx", "--size", "32", "--frames", "2", "--model-arg",
            "backbone=resnet18", "--int8", "--calibrate", str(tmp_path / "list.csv"), "--calib-videos", "1",
            "--out", out]
    assert main(args) == 2
    _one_line_error(capsys, "broken.mp4: cannot open", "--on-error skip")
    assert not os.path.exists(out)
    assert main(args + ["--on-error", "skip"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {broken}: cannot open" in printed
    meta = read_export(out)
    assert meta["int8"]["calibration"]["skipped"] == [str(broken)] and meta["verification"]["heldout_videos"] == 1
    assert meta["verification"]["passed"] == (meta["verification"]["top1_agreement_with_fp32"] >= 0.99)
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("q.")) == ["q.onnx", "q.onnx.json"]
