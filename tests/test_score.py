"""`zoo score`: manifests, the three tasks, Parquet shards, errors, resuming after a kill, URLs."""
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from zoo.cli import main
from zoo.data import synth
from zoo.data.manifest import read_manifest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

TINY = ["--model", "tsn_r50", "--model-arg", "backbone=resnet18", "--size", "32", "--frames", "4"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Six 16-frame SynthMotion videos at 32 px and a CSV manifest of them plus a missing one."""
    root = tmp_path_factory.mktemp("score")
    synth.generate(str(root / "data"), ["moving_right", "moving_left"], per_class=4, frames=16, size=32, seed=0)
    paths = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root / "data" / "videos")
                   for f in fs)[:6]
    (root / "m.csv").write_text("id,path\n" + "".join(f"v{i},{p}\n" for i, p in enumerate(paths[:3])) +
                                "gone,data/missing.mp4\n" + "".join(f"v{i},{p}\n" for i, p in enumerate(paths[3:], 3)))
    return root


def _tables(out):
    """The results folder read as one table (as a user reads it), and the errors."""
    return pq.read_table(os.path.join(out, "results")), pq.read_table(os.path.join(out, "errors.parquet"))


def test_manifest_formats_and_their_one_line_errors(tmp_path, videos):
    rows = [{"path": "a.mp4", "id": 7}, {"path": "sub/b.mp4"}, {"path": "https://host/c.mp4", "id": "c"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist([{**r, "id": None if "id" not in r else str(r["id"])} for r in rows]),
                   tmp_path / "m.parquet")
    for name in ("m.jsonl", "m.parquet"):
        items = read_manifest(str(tmp_path / name))
        assert [i.id for i in items] == ["7", "sub/b.mp4", "c"]
        assert items[0].path == str(tmp_path / "a.mp4") and items[2].path == "https://host/c.mp4"
    assert [i.row for i in read_manifest(str(videos / "m.csv"))] == list(range(7))
    bad = {"dup.csv": ("path,id\na.mp4,x\nb.mp4,x\n", "id 'x' on rows 1 and 2"),
           "nocol.csv": ("file,id\na.mp4,1\n", "has no 'path' column (columns: file, id)"),
           "empty.csv": ("path\n", "lists no video"),
           "m.txt": ("a.mp4\n", "unknown format '.txt'"),
           "j.jsonl": ("[1, 2]\n", "line 1: a JSON-lines manifest has one object per line")}
    for name, (text, words) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError) as e:
            read_manifest(str(tmp_path / name))
        assert words in str(e.value) and "\n" not in str(e.value)


def test_score_predict_writes_shards_errors_and_refuses_another_run(videos, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", out, "--shard-size", "3", "--topk", "2"]) == 0
    assert sorted(os.listdir(out)) == ["_errors", "_run.json", "_staging", "errors.parquet", "results"]
    assert sorted(os.listdir(os.path.join(out, "results"))) == [f"part-0000{k}.parquet" for k in range(3)]
    rows, errors = _tables(out)
    assert rows.column_names == ["id", "path", "topk_labels", "topk_probs", "logits"]
    assert rows.column("id").to_pylist() == ["v0", "v1", "v2", "v3", "v4", "v5"]  # manifest order, the bad one out
    first = rows.to_pylist()[0]
    assert len(first["topk_labels"]) == 2 and len(first["logits"]) == 400 and first["topk_probs"][0] >= first["topk_probs"][1]
    assert errors.to_pylist() == [{"id": "gone", "path": str(videos / "data" / "missing.mp4"), "error": "file not found"}]
    record = json.load(open(os.path.join(out, "_run.json")))
    assert record["complete"] and record["counts"] == {"videos": 7, "scored": 6, "errors": 1, "rows": 6, "shards": 3}
    assert record["identity"]["task"] == "predict" and record["identity"]["protocol"]["crop_size"] == 32
    # the same command again: everything is done, nothing recomputed, the same tables
    capsys.readouterr()
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", out, "--shard-size", "3", "--topk", "2"]) == 0
    assert "3 shard(s) were already done" in capsys.readouterr().out and _tables(out)[0].equals(rows)
    # other options would mix two runs in one table: refused, in one line, before any work
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", out, "--shard-size", "3"]) == 2
    err = capsys.readouterr().err
    assert "holds another scoring run (it differs in topk)" in err and err.count("\n") == 1
    # a directory zoo did not write is not written into
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", str(tmp_path / "mine")]) == 2
    assert "is not empty and holds no zoo score run" in capsys.readouterr().err
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_score_features_and_timeline(videos, tmp_path):
    (tmp_path / "one.csv").write_text(f"path\n{videos / 'data' / 'videos' / 'moving_left' / 'moving_left_0000.mp4'}\n")
    assert main(["score", str(tmp_path / "one.csv"), *TINY, "--task", "features", "--out", str(tmp_path / "f")]) == 0
    rows, _ = _tables(str(tmp_path / "f"))
    assert rows.column_names == ["id", "path", "features"] and len(rows.to_pylist()[0]["features"]) == 512
    assert main(["score", str(tmp_path / "one.csv"), *TINY, "--task", "timeline", "--out", str(tmp_path / "t")]) == 0
    rows, errors = _tables(str(tmp_path / "t"))
    assert rows.column_names == ["id", "path", "window_start", "window_end", "topk_labels", "topk_probs", "probs"]
    assert rows.num_rows >= 1 and errors.num_rows == 0
    starts = rows.column("window_start").to_pylist()
    assert starts == sorted(starts) and all(e > s for s, e in zip(starts, rows.column("window_end").to_pylist()))


def _kill_after_two_shards(cmd, env, out):
    """Run ``cmd`` (a zoo score into ``out``, 7 one-video shards), SIGKILL it once its second shard
    is written; the shards it left."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (out / "results" / "part-00001.parquet").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(n for n in os.listdir(out / "results") if n.endswith(".parquet"))  # not a shard being written
    assert 2 <= len(done) < 7 and not (out / "errors.parquet").exists()
    return done


def test_a_killed_run_resumes_to_the_tables_of_an_uninterrupted_one(videos, tmp_path):
    """SIGKILL once the second shard is on disk, then the same command: the tables equal those of a
    run never interrupted, and the killed run's temporary files are gone."""
    cmd = [sys.executable, "-m", "zoo", "score", str(videos / "m.csv"), *TINY, "--shard-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd + ["--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    done = _kill_after_two_shards(cmd + ["--out", str(out)], env, out)
    (out / "results" / "part-00006.parquet.zoo999999-x.tmp").write_bytes(b"half a shard")  # a writer killed mid-file
    result = subprocess.run(cmd + ["--out", str(out)], check=True, env=env, capture_output=True, text=True)
    assert f"{len(done)} shard(s) were already done" in result.stdout
    whole, killed = _tables(str(tmp_path / "whole")), _tables(str(out))
    assert killed[0].equals(whole[0]) and killed[1].equals(whole[1])
    assert not any(".tmp" in n for d in ("results", "_errors") for n in os.listdir(out / d))


@pytest.fixture
def server(videos):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(videos))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_urls_are_downloaded_with_timeouts_and_other_schemes_refused(videos, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZOO_NET_RETRIES", "0")
    local = read_manifest(str(videos / "m.csv"))[0].path
    url = f"{server}/{os.path.relpath(local, videos)}"
    (tmp_path / "u.csv").write_text(f"id,path\nlocal,{local}\nurl,{url}\nmissing,{server}/nothing.mp4\n")
    assert main(["score", str(tmp_path / "u.csv"), *TINY, "--out", str(tmp_path / "o")]) == 0
    rows, errors = _tables(str(tmp_path / "o"))
    by_id = {r["id"]: r for r in rows.to_pylist()}
    assert by_id["url"]["logits"] == by_id["local"]["logits"]  # the same video, read over HTTP
    assert errors.column("id").to_pylist() == ["missing"] and "cannot download" in errors.column("error")[0].as_py()
    assert os.listdir(tmp_path / "o" / "_staging") == []  # each download removed once scored
    (tmp_path / "x.csv").write_text("path\nnosuchscheme://bucket/a.mp4\n")
    capsys.readouterr()
    assert main(["score", str(tmp_path / "x.csv"), *TINY, "--out", str(tmp_path / "s")]) == 2
    assert "no reader for nosuchscheme:// URLs here" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_fsspec_urls_are_copied_and_a_stalled_one_times_out(videos, tmp_path, monkeypatch):
    """A scheme fsspec opens (its in-memory filesystem here) is copied to the staging folder and
    scored as the local file is, for clips and for timelines; a source that stops sending fails
    after ZOO_NET_TIMEOUT, as one error row."""
    fsspec = pytest.importorskip("fsspec")
    import threading

    from zoo._net import NetworkError, copy_fsspec

    local = read_manifest(str(videos / "m.csv"))[0].path
    with fsspec.open("memory://bucket/v.mp4", "wb") as f, open(local, "rb") as g:
        f.write(g.read())
    (tmp_path / "m.csv").write_text(f"id,path\nlocal,{local}\nmem,memory://bucket/v.mp4\nnone,memory://bucket/no.mp4\n")
    for task, col in (("predict", "logits"), ("timeline", "probs")):
        assert main(["score", str(tmp_path / "m.csv"), *TINY, "--task", task, "--out", str(tmp_path / task)]) == 0
        rows, errors = _tables(str(tmp_path / task))
        by_id = {}
        for r in rows.to_pylist():
            by_id.setdefault(r["id"], []).append(r[col])
        assert by_id["mem"] == by_id["local"] and errors.column("id").to_pylist() == ["none"]
        assert "FileNotFoundError" in errors.column("error")[0].as_py()
    never = threading.Event()

    class Stalled:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            never.set()

        def read(self, n):
            never.wait(5)
            return b""
    monkeypatch.setattr(fsspec, "open", lambda *a, **k: Stalled())
    with pytest.raises(NetworkError, match=r"stalled: no data for 0.2 s after 0 bytes"):
        copy_fsspec("memory://bucket/v.mp4", str(tmp_path / "staged"), timeout=0.2)
    never.set()


RAY = ["--engine", "ray", "--threads", "1"]


@pytest.mark.slow
def test_the_ray_engine_writes_the_local_engines_tables_and_resumes_after_a_kill(videos, tmp_path):
    """On a local Ray instance: videos read in Ray tasks, the model in an actor; the tables equal the
    local engine's row for row (both models on one thread); killed once two shards are written, the
    same command finishes the run to the same tables."""
    pytest.importorskip("ray")
    cmd = [sys.executable, "-m", "zoo", "score", str(videos / "m.csv"), *TINY, "--shard-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(cmd + ["--threads", "1", "--out", str(tmp_path / "local")], check=True, env=env, capture_output=True)
    whole = subprocess.run(cmd + [*RAY, "--out", str(tmp_path / "ray")], env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert "6 of 7 video(s) scored" in whole.stdout
    local, ray_ = _tables(str(tmp_path / "local")), _tables(str(tmp_path / "ray"))
    assert ray_[0].equals(local[0]) and ray_[1].equals(local[1])
    assert json.load(open(tmp_path / "ray" / "_run.json"))["engine"] == "ray, 1 worker(s) x 1 thread(s)"

    out = tmp_path / "killed"
    done = _kill_after_two_shards(cmd + [*RAY, "--out", str(out)], env, out)
    again = subprocess.run(cmd + [*RAY, "--out", str(out)], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{len(done)} shard(s) were already done" in again.stdout
    resumed = _tables(str(out))
    assert resumed[0].equals(local[0]) and resumed[1].equals(local[1])


def test_engine_options_are_checked_before_any_work(videos, tmp_path, capsys):
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", str(tmp_path / "o"), "--workers", "2"]) == 2
    assert "--workers and --address are for --engine ray" in capsys.readouterr().err
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", str(tmp_path / "o"), "--threads", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bf16_scores_on_the_fast_path_and_is_a_run_of_its_own(videos, tmp_path, capsys):
    (tmp_path / "one.csv").write_text(f"path\n{videos / 'data' / 'videos' / 'moving_left' / 'moving_left_0000.mp4'}\n")
    args = ["score", str(tmp_path / "one.csv"), *TINY, "--out", str(tmp_path / "o")]
    assert main(args) == 0
    fp32 = _tables(str(tmp_path / "o"))[0].to_pylist()[0]["logits"]
    assert main(args + ["--dtype", "bf16"]) == 2  # not appended to the fp32 run
    assert "differs in optimize" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "one.csv"), *TINY, "--out", str(tmp_path / "b"), "--dtype", "bf16"]) == 0
    bf16 = _tables(str(tmp_path / "b"))[0].to_pylist()[0]["logits"]
    assert bf16 != fp32 and max(abs(a - b) for a, b in zip(bf16, fp32)) < 0.1 * max(map(abs, fp32))
    assert main(["score", str(tmp_path / "one.csv"), *TINY, "--out", str(tmp_path / "n"), "--dtype", "bf16",
                 "--no-optimize"]) == 2
    assert "bf16 runs the CPU fast path" in capsys.readouterr().err


def test_ray_actors_must_fit_the_cluster():
    """More model CPUs than the cluster has would wait for ever: refused first."""
    from zoo.engine.score_ray import _check_cpus

    class Cluster:
        @staticmethod
        def cluster_resources():
            return {"CPU": 2.0}
    _check_cpus(Cluster, 1, 2)
    _check_cpus(Cluster, 2, 1)
    with pytest.raises(ValueError, match=r"--workers 3 x --threads 1 needs 3 CPU\(s\) for the models; the Ray cluster has 2"):
        _check_cpus(Cluster, 3, 1)


def test_an_output_that_cannot_be_a_directory_is_refused_first(videos, tmp_path, capsys, monkeypatch):
    (tmp_path / "taken").write_text("a file")
    monkeypatch.setattr("zoo.cli.score.load_model", lambda *a: pytest.fail("the model was built first"))
    assert main(["score", str(videos / "m.csv"), *TINY, "--out", str(tmp_path / "taken")]) == 2
    assert "taken" in capsys.readouterr().err
