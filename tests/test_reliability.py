"""What happens when things go wrong: outputs that cannot be written are refused before the work,
write failures name the file and the OS reason, killed runs leave no debris, an evaluation directory
is replaced as one set, bad rows of a data list are reported with their row, and every such error
is one line (exit code 2). The SIGKILL-and-resume fault injection is in test_engine_e2e.py."""
import errno
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import zoo._files as files
from zoo.cli import main
from zoo.engine.harness import EvalResult, format_table, load_eval, save_eval
from zoo.engine.metrics import compute_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--model-arg", "backbone=resnet18", "--frames", "2", "--size", "32", "--views", "1x1", "--no-progress"]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from zoo.data import synth
    out = tmp_path_factory.mktemp("synth")
    synth.generate(str(out), classes=2, per_class=4, frames=8, size=32, seed=0)
    return str(out)


def _result(n=4, k=3, order="normal"):
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(n, 2, k, generator=g), torch.arange(n) % k
    names = [f"c{i}" for i in range(k)]
    metrics = compute_metrics(logits, labels, agg="prob-mean", class_names=names)
    return EvalResult(metrics, logits, labels, list(range(n)), [f"v{i}.mp4" for i in range(n)], [], names,
                      {"model": "m", "temporal_order": order})


# -- outputs checked before the work ---------------------------------------------------------------
def test_output_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    files.check_output_dir(str(tmp_path / "new" / "deeper"))  # creatable: fine, and nothing is created
    assert not (tmp_path / "new").exists()
    with pytest.raises(files.OutputError, match="a file is in its place"):
        files.check_output_dir(str(f))
    with pytest.raises(files.OutputError, match="is a file, so the directory cannot be created"):
        files.check_output_dir(str(f / "sub"))
    with pytest.raises(files.OutputError, match="is a directory: name a file"):
        files.check_output_file(str(tmp_path))
    with pytest.raises(files.OutputError, match="does not exist"):
        files.check_output_file(str(tmp_path / "nope" / "model.onnx"))
    assert os.listdir(tmp_path) == ["file"]  # the probes leave nothing


def test_read_only_directory_is_refused(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the probe meet what a user would
        def denied(path, tag=None, ext=""):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        monkeypatch.setattr(files, "temp_path", denied)
    else:
        ro.chmod(0o555)
    try:
        with pytest.raises(files.OutputError, match="cannot write there .*Permission denied"):
            files.check_output_dir(str(ro / "run"))
        with pytest.raises(files.OutputError, match="cannot write in .*Permission denied"):
            files.check_output_file(str(ro / "model.onnx"))
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("argv, needle", [
    (["train", "tsm_r50", "--data", "{data}", "--out", "{file}", "--epochs", "1"], "--out {file}: a file is in its place"),
    (["eval", "tsn_r50", "--data", "{missing}", "--out", "{file}"], "--out {file}: a file is in its place"),
    (["eval", "--from", "{missing}", "--out", "{file}"], "--out {file}: a file is in its place"),
    (["synth", "{file}/sub"], "is a file, so the directory cannot be created"),
    (["export", "tsn_r50", "--format", "onnx", "--out", "{dir}"], "is a directory: name a file"),
    (["predict", "tsn_r50", "{missing}", "--timeline", "--out", "{file}"], "a file is in its place"),
    (["features", "tsn_r50", "{missing}", "--out", "{dir}"], "is a directory: name a file"),
    (["audit", "{data}", "--out", "{file}"], "a file is in its place"),
])
def test_commands_check_their_output_before_the_work(argv, needle, data, tmp_path, capsys):
    """Every command that writes results refuses an unusable --out first: one line, exit 2, before any
    data is read (the data named here is missing or never looked at)."""
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "dir.pt").mkdir()
    fill = {"data": data, "file": str(tmp_path / "file"), "dir": str(tmp_path / "dir.pt"),
            "missing": str(tmp_path / "missing.mp4")}
    assert main([a.format(**fill) for a in argv]) == 2
    _one_line_error(capsys, needle.format(**fill))


# -- write failures --------------------------------------------------------------------------------
def test_file_size_limit_names_the_file_and_leaves_nothing(tmp_path):
    """Under `ulimit -f` torch.save alone says 'inline_container.cc: unexpected pos'; zoo names the file,
    the OS reason and the limit, and removes its temporary file."""
    script = ("import resource, sys, torch\n"
              "from zoo._files import atomic_save, WriteError\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
              "try:\n"
              "    atomic_save({'w': torch.zeros(1 << 20)}, sys.argv[1])\n"
              "except WriteError as e:\n"
              "    print(e)\n")
    target = str(tmp_path / "last.pt")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script, target], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"cannot write {target}: File too large (the file-size limit (`ulimit -f`) is too " \
                               f"small for it)"
    assert os.listdir(tmp_path) == []


def test_disk_full_while_saving_results_is_one_line(tmp_path, capsys, monkeypatch):
    save_eval(_result(), str(tmp_path / "ev"))
    before = sorted(os.listdir(tmp_path / "ev"))
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    assert main(["eval", "--from", str(tmp_path / "ev"), "--agg", "max"]) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    _one_line_error(capsys, f"cannot write {tmp_path / 'ev'}", "No space left on device", "the disk is full")
    assert sorted(os.listdir(tmp_path / "ev")) == before  # nothing half written, no temporary file


# -- no debris, sets replaced whole ----------------------------------------------------------------
def _dead_pid():
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def test_clean_directory_removes_only_zoo_temporaries_of_gone_processes(tmp_path):
    dead = _dead_pid()
    names = {f"last.pt.zoo{dead}-k3j_x9aa.tmp": True,  # a killed run's
             f"model.onnx.zoo{dead}-fp32.tmp.onnx": True,
             f"model.pt.zoo{os.getpid()}-abcdefgh.tmp": True,  # this process is not writing it
             "last.pt.zoo1-abcdefgh.tmp": False,  # a running process's (pid 1)
             "last.pt.tmp": False, "notes.tmp": False, "my.zoo-run.tmp": False, f"x.zoo{dead}.tmp": False,
             "last.pt": False}
    for n in names:
        (tmp_path / n).write_text("x")
    removed = files.clean_directory(str(tmp_path))
    assert sorted(removed) == sorted(n for n, gone in names.items() if gone)
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, gone in names.items() if not gone)
    # a journal is followed only within its directory, and only from zoo's temporary files
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "notes.txt").write_text("x")
    (inner / files.JOURNAL).write_text(json.dumps({"pid": _dead_pid(), "replace": [["notes.txt", "x.txt"],
                                                   ["../last.pt", "y"]], "remove": ["../notes.tmp", "/etc/hosts"]}))
    files.clean_directory(str(inner))
    assert sorted(os.listdir(inner)) == ["notes.txt"] and (tmp_path / "notes.tmp").exists()


def test_an_eval_directory_is_all_new_or_all_old(tmp_path):
    """Killed between the renames of a new evaluation, the directory is completed to the new set by
    the next reader; a new evaluation also removes the re-aggregations of the old logits."""
    out = str(tmp_path / "ev")
    save_eval(_result(n=4), out)
    save_eval(_result(n=4), out, metrics_name="metrics_max.json")
    script = ("import os, signal, sys\n"
              "import zoo._files as files\n"
              "from zoo.engine.harness import save_eval\n"
              "from tests.test_reliability import _result\n"
              "real = os.replace\n"
              "def replace(src, dst):\n"
              "    real(src, dst)\n"
              "    if not dst.endswith(files.JOURNAL):\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "os.replace = replace\n"
              "save_eval(_result(n=6), sys.argv[1])\n")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script, out], env=env, cwd=REPO, capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-2000:]
    assert os.path.exists(os.path.join(out, files.JOURNAL))  # half replaced: one file renamed, the rest waiting
    result = load_eval(out)  # completes the replacement first
    assert len(result.paths) == 6
    assert json.load(open(os.path.join(out, "metrics.json")))["num_videos"] == 6
    assert sorted(os.listdir(out)) == ["confusion_matrix.csv", "confusion_matrix.png", "logits.pt", "metrics.json"]


# -- one line instead of a traceback ---------------------------------------------------------------
def test_unreadable_saved_logits(tmp_path, capsys):
    (tmp_path / "logits.pt").write_bytes(b"not a checkpoint")
    assert main(["eval", "--from", str(tmp_path)]) == 2
    _one_line_error(capsys, f"cannot read saved logits {tmp_path / 'logits.pt'}", "zoo eval")
    torch.save({"view_logits": torch.zeros(1, 1, 2)}, tmp_path / "logits.pt")
    assert main(["eval", "--from", str(tmp_path)]) == 2
    _one_line_error(capsys, "no 'labels' in it")


@pytest.mark.parametrize("text, needle", [
    ("model: tsm_r50\nsize: [32\n", "is not valid safe YAML"),
    ("!!python/object/apply:os.system ['touch {marker}']\n", "is not valid safe YAML"),
    ("- just\n- a list\n", "must hold a mapping"),
])
def test_bad_run_directory_config(text, needle, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "executed"
    (run / "config.yaml").write_text(text.format(marker=marker))
    assert main(["eval", "--run-dir", str(run), "--data", str(tmp_path)]) == 2
    _one_line_error(capsys, needle, str(run / "config.yaml"))
    assert not marker.exists()


def test_list_without_match_is_an_error(capsys):
    assert main(["list", "xyz*"]) == 2
    _one_line_error(capsys, "no model matches 'xyz*'", "tsm_r50")


def test_table_names_a_temporal_order():
    normal = format_table({"m": _result()})
    assert "order" not in normal.splitlines()[0]
    reversed_ = format_table({"m": _result(order="reversed")})
    assert reversed_.splitlines()[0].split()[5] == "order" and reversed_.splitlines()[2].split()[5] == "reversed"


# -- bad rows in the data lists --------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_list(data, tmp_path_factory):
    """A CSV with a label map beside it: two good videos, a 2-frame one, and a row with an unknown label."""
    from zoo.data import synth

    d = tmp_path_factory.mktemp("bad")
    frames = synth.render_clip("moving_left", np.random.default_rng(0), 32, 8, "easy")
    synth.write_video(str(d / "two.mp4"), frames[:2], fps=15)
    good = [os.path.join(data, "videos", c, f"{c}_0000.mp4") for c in ("moving_left", "moving_right")]
    (d / "labels.txt").write_text("moving_left\nmoving_right\n")
    (d / "list.csv").write_text(f"{good[0]},moving_left\n{good[1]},moving_right\n{d / 'two.mp4'},moving_left\n"
                                f"{good[0]},unicorn\n")
    return d


def test_too_short_video_and_unknown_label_follow_the_on_error_policy(bad_list, tmp_path, capsys):
    spec = str(bad_list / "list.csv")
    assert main(["eval", "tsn_r50", "--data", spec, *TINY]) == 2  # the unknown label: named with its row
    _one_line_error(capsys, "label 'unicorn' is not in the label map (2 classes)", f"{spec}:4", "--on-error skip")
    out = str(tmp_path / "ev")
    assert main(["eval", "tsn_r50", "--data", spec, *TINY, "--on-error", "skip", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "2 of 4 videos evaluated" in printed
    assert f"skipped {bad_list / 'two.mp4'}: too short: 2 frames, a clip needs at least 3" in printed
    assert f"label 'unicorn' is not in the label map (2 classes): {spec}:4" in printed
    skipped = json.load(open(os.path.join(out, "metrics.json")))["skipped"]
    assert [s["index"] for s in skipped] == [2, 3]
    assert main(["predict", "tsn_r50", str(bad_list / "two.mp4"), *TINY]) == 2
    _one_line_error(capsys, "two.mp4", "too short: 2 frames")


def test_check_data_warns_when_integer_labels_leave_most_classes_empty(data, tmp_path, capsys):
    video = os.path.join(data, "videos", "moving_left", "moving_left_0000.mp4")
    rows = [f"{video},{k}" for k in (0, 1, 2, 3, 0, 1)] + [f"{video},999"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    assert main(["check-data", str(tmp_path / "list.csv")]) == 0
    printed = capsys.readouterr().out
    assert "warning: integer labels 0-999 make 1000 classes and 995 of them have no video" in printed
    assert f"999 at {tmp_path / 'list.csv'}:7" in printed
    (tmp_path / "ok.csv").write_text("\n".join(rows[:-1]) + "\n")
    assert main(["check-data", str(tmp_path / "ok.csv")]) == 0
    assert "warning" not in capsys.readouterr().out


def test_features_without_weights_warns(data, tmp_path, capsys):
    video = os.path.join(data, "videos", "moving_left", "moving_left_0000.mp4")
    assert main(["features", "tsn_r50", video, "--out", str(tmp_path / "f.npz"), *TINY[:-1]]) == 0
    assert "randomly initialised" in capsys.readouterr().out
    with np.load(tmp_path / "f.npz") as f:
        assert f["features"].shape == (1, 512)


def test_the_next_command_removes_what_a_killed_one_left(tmp_path):
    ev = tmp_path / "ev"
    save_eval(_result(), str(ev))
    stale, other = ev / f"metrics.json.zoo{_dead_pid()}-abcdefgh.tmp", ev / "notes.tmp"
    stale.write_text("half")
    other.write_text("mine")
    assert main(["eval", "--from", str(ev), "--agg", "max"]) == 0
    assert not stale.exists() and other.read_text() == "mine"


# -- plain mistakes are one line, found before the long work -----------------------------------------
@pytest.fixture(scope="module")
def video(data):
    return os.path.join(data, "videos", "moving_left", "moving_left_0000.mp4")


def test_a_checkpoint_of_another_model_is_one_line(video, tmp_path, capsys, data):
    import zoo

    other = str(tmp_path / "other.pth")
    torch.save(zoo.build("r2plus1d_18", num_classes=2, layers=(1, 1, 1, 1)).state_dict(), other)
    listing = tmp_path / "list.csv"
    listing.write_text(f"{video},0\n{video},1\n")
    for argv in (["predict", "tsm_r50", video], ["features", "tsm_r50", video, "--out", str(tmp_path / "f.pt")],
                 ["eval", "tsm_r50", "--data", str(listing), "--no-progress"]):
        assert main([*argv, *TINY[:-1], "--weights", other]) == 2, argv
        _one_line_error(capsys, "tsm_r50: checkpoint does not match the model: missing keys")


def test_a_mismatched_release_file_is_one_line(video, tmp_path, monkeypatch, capsys):
    import zoo

    record = zoo.weights_info("tsn_r50.kinetics400")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(zoo.build("r2plus1d_18", num_classes=2, layers=(1, 1, 1, 1)).state_dict(), mirror / record.file_names[0])
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    monkeypatch.setattr(type(record), "hashes", property(lambda self: (None,) * len(self.files)))
    assert main(["predict", "tsn_r50", video, "--pretrained", "kinetics400", "--size", "32", "--no-optimize"]) == 2
    _one_line_error(capsys, "checkpoint does not match the model")


def test_an_offline_release_prints_no_progress_bar(video, tmp_path, monkeypatch, capsys):
    import zoo.models._hub as hub

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_NET_RETRIES", "0")
    monkeypatch.setattr(hub, "_sources", lambda file: ["http://127.0.0.1:9/" + file.rsplit("/", 1)[-1]])
    assert main(["predict", "tsn_r50", video, "--pretrained", "--size", "32", "--no-optimize"]) == 2
    err = _one_line_error(capsys, "cannot connect", "ZOO_WEIGHTS_MIRROR")
    assert "%|" not in err and "it/s" not in err
    assert not [p for p in (tmp_path / "cache" / "weights").iterdir() if p.name.startswith(".zoo-staging")]


@pytest.mark.parametrize("argv, needle", [
    (["predict", "tsn_r50", "{video}", "--views", "2000x3"], "--views 2000x3: 6000 clips of [3, 8, 224, 224]"),
    (["eval", "tsn_r50", "--data", "{data}", "--views", "100000x3"], "--batch-size 4: 1200000 clips"),
])
def test_views_whose_clips_cannot_fit_are_refused_first(argv, needle, video, data, monkeypatch, capsys):
    import zoo.engine.prepare as prepare

    monkeypatch.setattr(prepare, "available_memory", lambda: 16 << 30)
    monkeypatch.setattr(prepare, "build_checked", lambda *a, **k: pytest.fail("built the model first"))
    assert main([a.format(video=video, data=data) for a in argv]) == 2
    _one_line_error(capsys, needle, "more than half of the 16.0 GiB available", "fewer views")


def test_a_text_file_as_a_video_is_refused_before_the_model_is_built(tmp_path, monkeypatch, capsys):
    import zoo.engine.prepare as prepare

    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    monkeypatch.setattr(prepare, "build_checked", lambda *a, **k: pytest.fail("built the model first"))
    assert main(["predict", "tsm_r50", str(text)]) == 2
    _one_line_error(capsys, "notes.mp4: cannot open")
    assert main(["features", "tsm_r50", str(text), str(text), "--out", str(tmp_path / "f.pt")]) == 2
    _one_line_error(capsys, "notes.mp4: cannot open", "--on-error skip")


def test_features_skip_unreadable_videos_when_asked(video, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    out = str(tmp_path / "f.pt")
    assert main(["features", "tsn_r50", video, str(text), "--out", out, "--on-error", "skip", *TINY[:-1]]) == 0
    assert f"skipped {text}: cannot open" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert saved["paths"] == [video] and saved["features"].shape[0] == 1
    assert [s["path"] for s in saved["skipped"]] == [str(text)]


def test_text_files_that_are_not_utf8_and_videos_given_as_data(video, tmp_path, capsys):
    latin = tmp_path / "list.csv"
    latin.write_bytes(f"{video},caf\xe9\n".encode("latin-1"))
    assert main(["check-data", str(latin)]) == 2
    _one_line_error(capsys, f"{latin}:1: not UTF-8 text (byte 0xe9", "save it as UTF-8")
    assert main(["eval", "tsn_r50", "--data", str(latin), *TINY]) == 2
    _one_line_error(capsys, f"{latin}:1: not UTF-8")
    assert main(["check-data", video]) == 2
    _one_line_error(capsys, "is a video, not a dataset", "zoo predict MODEL VIDEO")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + f"{video},moving_left\n".encode())
    assert main(["check-data", str(tmp_path / "bom.csv")]) == 0  # a byte-order mark is fine


def test_counts_below_one_are_named(video, capsys):
    import zoo

    for kwargs, needle in ((dict(num_classes=0), "num_classes must be >= 1, got 0"),
                           (dict(num_segments=0), "num_segments must be >= 1, got 0"),
                           (dict(num_segments=-3), "num_segments must be >= 1, got -3"),
                           (dict(num_segments=2.5), "num_segments must be a whole number")):
        with pytest.raises(ValueError, match=needle):
            zoo.build("tsm_r50", **kwargs)
    for flag in ("--frames", "--size"):
        assert main(["predict", "tsm_r50", video, flag, "0"]) == 2
        _one_line_error(capsys, f"{flag} must be >= 1, got 0")
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", "x.onnx", "--frames", "0"]) == 2
    _one_line_error(capsys, "--frames must be >= 1, got 0")


def test_resume_from_a_file_with_a_pickled_object_is_one_line(data, tmp_path, capsys):
    bad = tmp_path / "last.pt"
    torch.save({"model": EvalResult}, bad)  # a class: weights_only refuses it
    assert main(["train", "tsn_r50", "--data", data, "--out", str(tmp_path / "run"), "--resume", str(bad),
                 "--epochs", "1"]) == 2
    err = _one_line_error(capsys, "it holds a pickled", "zoo.engine.harness.EvalResult")
    assert "weights_only=False" not in err


# -- whose error it is ---------------------------------------------------------------------------------
def test_a_bug_in_zoo_is_a_traceback_with_a_request_to_report_it(monkeypatch, capsys):
    from zoo.cli import build_parser

    def broken(args):
        return len(None)  # an internal TypeError, not the user's

    monkeypatch.setattr("zoo.cli.build_parser", lambda: _with_handler(build_parser(), "list", broken))
    with pytest.raises(TypeError, match="has no len"):
        main(["list"])
    err = capsys.readouterr().err
    assert "internal error, a bug in zoo" in err and "`zoo env`" in err


def _with_handler(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser


def test_user_errors_are_zoo_errors_with_the_builtin_kinds_kept(monkeypatch, capsys):
    import zoo

    for call, builtin in ((lambda: zoo.build("tsm_r5O"), KeyError), (lambda: zoo.build("tsm_r50", num_classes=0), ValueError),
                          (lambda: zoo.build("tsm_r50", shift_dvi=4), TypeError),
                          (lambda: zoo.build("tsm_r50", weights="/no/such/file.pt"), FileNotFoundError)):
        with pytest.raises(zoo.ZooError) as e:
            call()
        assert isinstance(e.value, builtin)
    assert main(["info", "tsm_r5O"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    monkeypatch.setenv("ZOO_DEBUG", "1")  # the traceback of a user error, for those who want it
    assert main(["info", "tsm_r5O"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("zoo info: error: unknown model 'tsm_r5O'")
