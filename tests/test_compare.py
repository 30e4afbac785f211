"""`zoo compare`: bench presets, run grouping, a tiny end-to-end run and the command line."""
import json
import os

import pytest
import torch
import torch.nn as nn

import zoo
from zoo.cli import main
from zoo.benchmark.bench_training import bench_model, group_runs
from zoo.benchmark.compare import run_compare
from zoo.benchmark.latency import measure_in_child
from zoo.benchmark.bench_training import recheck_numerics
from zoo.benchmark.results import fast_path_ms, previous_entries


@pytest.mark.parametrize("name", zoo.list_models())
def test_bench_preset_builds_and_runs_at_32px(name):
    bench = zoo.models.bench_preset(name)
    assert json.loads(json.dumps(dict(bench.model_args))) == bench.model_args  # JSON / YAML safe: lists, not tuples
    model = bench_model(name, num_classes=4).eval()
    assert model.info.crop_size == 32 and model.info.num_frames == bench.frames
    # the sampler fits the 32-frame SynthMotion clips
    span = bench.frames * model.info.sampling_rate if model.info.sampling == "dense" else bench.frames
    assert span <= 32
    with torch.no_grad():
        assert model(torch.randn(1, *model.info.input_shape)).shape == (1, 4)


def test_grouping_collapses_depth_variants_only():
    groups = group_runs()
    run_of = {m: run for run, members in groups.items() for m in members}
    assert sorted(run_of) == sorted(zoo.list_models())
    for r101, r50 in [("tsm_r101", "tsm_r50"), ("pan_lite_r101", "pan_lite_r50"), ("pan_full_r101", "pan_full_r50"),
                      ("pan_en_r101", "pan_en_r50"), ("p3d_199", "p3d_63")]:
        assert run_of[r101] == r50 and groups[r50][0] == r50
    # different networks stay apart: TSN has no shift, PAN Lite/Full/En differ in streams, SlowFast
    # 8x8 R101's laterals have kernel 5 (R50: 7), R(2+1)D-34 uses the VMZ mid-channel rule
    for name in ("tsn_r50", "pan_full_r50", "pan_en_r50", "slowfast_8x8_r101", "slowfast_4x16_r50", "r2plus1d_34",
                 "i3d_inception_v1"):
        assert run_of[name] == name
    assert all(len({zoo.model_info(m).family for m in members}) == 1 for members in groups.values())


@pytest.mark.slow
def test_run_compare_writes_the_schema(tmp_path, monkeypatch):
    results = tmp_path / "compare.json"
    models = ["tsm_r101", "p3d_199"]  # cheap bench networks, both shared with another model
    budget = dict(classes=4, per_class=4, heldout_per_class=3, epochs=1, skip_latency=True, progress=False,
                  command="test")
    runs = str(tmp_path / "runs")
    doc = run_compare(runs, str(results), models=models, **budget)
    assert json.loads(results.read_text()) == json.loads(json.dumps(doc))
    assert {"command", "date", "versions", "machine", "quick", "settings", "models"} <= set(doc)
    assert doc["machine"]["threads"] >= 1 and doc["settings"]["seed"] == 0
    data = doc["settings"]["data"]
    assert data["twins"] == [["moving_right", "moving_left"], ["moving_down", "moving_up"]]
    assert data["train_videos"] + data["val_videos"] == 16
    assert set(doc["models"]) == set(models)
    for name, e in doc["models"].items():
        info = zoo.model_info(name)
        assert e["input_shape"] == list(info.input_shape) and e["views"] == list(info.test_views)
        assert e["params"] > 0 and e["gflops"] > 0 and "latency" not in e
        b = e["bench"]
        for key in ("normal", "reversed", "shuffled"):
            assert 0 <= b["top1"][key] <= 100 and 0 <= b["top5"][key] <= 100
        assert 0 <= b["twin_acc"] <= 100 and 0 <= b["near_tie_fraction"] <= 1
        # bf16 agreement over the val split (1 per class) and the held-out set (3 per class)
        assert b["bf16_agreement_videos"] == 16 == doc["settings"]["numerics"]["bf16_agreement_videos"]
        flips = len(b["bf16_flip_gaps"])
        assert b["bf16_top1_agreement"] == round(1 - flips / 16, 4) and all(g >= 0 for g in b["bf16_flip_gaps"])
        assert b["fp32_max_rel_dlogit"] < 1e-3 and b["train_seconds"] > 0 and b["size"] == 32
        preset = zoo.models.bench_preset(name)
        assert b["frames"] == preset.frames and b["model_args"] == dict(preset.model_args)
        assert name == b["run"] or name in b["shared_with"]
    # tsm_r101's bench network is tsm_r50's: the run is named after the first registered of the group
    assert doc["models"]["tsm_r101"]["bench"]["run"] == "tsm_r50"
    assert doc["models"]["tsm_r101"]["bench"]["shared_with"] == ["tsm_r101"]
    assert doc["models"]["p3d_199"]["bench"]["run"] == "p3d_63"
    # a re-run with the same settings reuses the finished entries (no training: same seconds, no
    # measuring) and re-measures the fast path's numerics on the saved weights
    from zoo.benchmark import compare as compare_module
    measured, measure = [], compare_module.measure
    monkeypatch.setattr(compare_module, "measure", lambda name, **kw: measured.append(name) or measure(name, **kw))
    again = run_compare(runs, str(results), models=models[:1], **budget)
    b, b0 = again["models"]["tsm_r101"]["bench"], doc["models"]["tsm_r101"]["bench"]
    assert "numerics_rechecked" in b and "numerics_rechecked" not in b0
    numerics = ("bf16_top1_agreement", "bf16_flip_gaps", "near_tie_fraction", "fp32_max_rel_dlogit")
    assert {k: v for k, v in b.items() if k not in (*numerics, "numerics_rechecked")} == \
        {k: v for k, v in b0.items() if k not in numerics}
    assert b["bf16_top1_agreement"] == b0["bf16_top1_agreement"] and b["fp32_max_rel_dlogit"] < 1e-3
    assert again["models"]["p3d_199"] == doc["models"]["p3d_199"]  # not in this call: untouched
    assert measured == []
    # --remeasure: the named models' cost (and latency) measured again, their training kept
    remeasured = run_compare(runs, str(results), models=models[:1], remeasure=True, **budget)
    assert measured == ["tsm_r101"]
    assert remeasured["models"]["tsm_r101"]["bench"]["train_seconds"] == b0["train_seconds"]
    assert remeasured["models"]["p3d_199"] == doc["models"]["p3d_199"]
    assert remeasured["versions"]["zoo_commit"]  # this checkout's commit, recorded with the results
    # without the saved weights there is nothing to re-check: the entry stays as it was
    os.remove(tmp_path / "runs" / "tsm_r50" / "model.pt")
    assert recheck_numerics(b0, str(tmp_path / "runs" / "data")) == b0
    # other latency settings: latency is re-measured, cost and training are kept
    changed = json.loads(json.dumps(doc["settings"]))
    changed["latency"]["reps"] += 1
    kept = previous_entries(str(results), changed, quick=False)
    assert kept == remeasured["models"]  # (no latency to drop: it was skipped)
    changed["train"]["epochs"] += 1  # and other training settings: the training is dropped too, cost kept
    assert previous_entries(str(results), changed, quick=False) == \
        {n: {k: v for k, v in e.items() if k != "bench"} for n, e in remeasured["models"].items()}


def test_previous_drops_what_changed_settings_invalidate(tmp_path):
    settings = {"seed": 0, "latency": {"reps": 5, "compile": False}, "data": {"classes": ["a"]}, "train": {"epochs": 6}}
    entry = {"params": 1, "gflops": 2.0, "latency": {"fast_fp32_ms": 3.0}, "bench": {"run": "m"}}
    path = tmp_path / "compare.json"
    # kept latency names the run that measured it
    measured_by = {"command": "zoo compare", "date": "2026-11-22 04:10:00 UTC", "zoo_commit": "abc1234"}
    kept = {"m": {**entry, "latency": {**entry["latency"], "measured_by": measured_by}}}
    path.write_text(json.dumps({"quick": False, "settings": settings, "models": {"m": entry}, "versions":
                                {"zoo_commit": "abc1234"}, "command": "zoo compare", "date": measured_by["date"]}))
    assert previous_entries(str(path), settings, quick=False) == kept
    assert previous_entries(str(path), settings, quick=True) == {}
    recompiled = {**settings, "latency": {"reps": 5, "compile": True}}
    assert previous_entries(str(path), recompiled, quick=False) == {"m": {"params": 1, "gflops": 2.0, "bench": {"run": "m"}}}
    # other training or data settings: retrain, keep cost and latency; other numerics settings: keep all
    # (every reused run's numerics are re-checked)
    longer = {**settings, "train": {"epochs": 12}}
    assert previous_entries(str(path), longer, quick=False) == \
        {"m": {"params": 1, "gflops": 2.0, "latency": kept["m"]["latency"]}}
    assert previous_entries(str(path), {**settings, "numerics": {"heldout": "other"}}, quick=False) == kept


def test_fast_path_ms_picks_the_faster_path():
    assert fast_path_ms({"fast_fp32_ms": 10.0}, "fp32") == (10.0, False)
    assert fast_path_ms({"fast_fp32_ms": 10.0, "compiled_fp32_ms": 6.0}, "fp32") == (6.0, True)
    assert fast_path_ms({"fast_bf16_ms": 5.0, "compiled_bf16_ms": 6.0}, "bf16") == (5.0, False)
    assert fast_path_ms({}, "bf16") == (None, False)


@pytest.mark.slow
def test_measure_in_a_fresh_process():
    out = measure_in_child("p3d_63", threads=1, warmup=0, reps=1, layout="channels_last", compile=False)  # cheapest
    assert out["input_shape"] == list(zoo.model_info("p3d_63").input_shape) and out["gflops"] > 1
    lat = out["latency"]
    assert all(lat[k] > 0 for k in ("eager_fp32_ms", "fast_fp32_ms", "fast_bf16_ms", "clips_per_s_bf16"))
    assert lat["speedup_fp32"] == pytest.approx(lat["eager_fp32_ms"] / lat["fast_fp32_ms"], rel=0.01)
    assert 0 < lat["peak_rss_eager_mib"] <= lat["peak_rss_mib"]
    assert lat["path_fp32"] == "not compiled" and "compiled_fp32_ms" not in lat


def test_a_killed_child_says_how_it_ended():
    """A measurement child the kernel kills (out of memory) leaves no traceback: the error says so."""
    import sys

    from zoo.benchmark.latency import json_from_child

    with pytest.raises(RuntimeError, match="failed, killed by SIGKILL .*out-of-memory killer"):
        json_from_child([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    with pytest.raises(RuntimeError, match="failed, exit status 3:\nboom"):
        json_from_child([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--skip-latency" in out and "--models" in out


def test_cli_rejects_bad_budget(capsys):
    assert main(["compare", "--epochs", "0", "--skip-latency"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_time_interleaved_times_every_function_in_rotated_rounds():
    from zoo.inference.timing import time_interleaved

    order = []
    fns = {name: (lambda x, name=name: order.append(name)) for name in "abc"}
    secs = time_interleaved(fns, None, warmup=1, reps=3, settle=0)
    assert sorted(secs) == ["a", "b", "c"] and all(s >= 0 for s in secs.values())
    # warm-up once each, then one call of each per round, the round's first rotating by one
    assert order == list("abc") + list("abc") + list("bca") + list("cab")
    order.clear()
    time_interleaved(fns, None, warmup=0, reps=2)  # settle=1: an untimed call before each timed one
    assert order == list("aabbcc") + list("bbccaa")


def test_a_changed_bench_preset_is_not_reused():
    """A results entry records its bench network's fingerprint; `zoo compare` trains again when the
    model's preset has changed since (other frames or architecture options)."""
    from zoo.benchmark.bench_training import fingerprint, is_current

    entry = {"run": "tsn_r50", "fingerprint": fingerprint("tsn_r50")}
    assert is_current(entry)
    assert not is_current({**entry, "fingerprint": fingerprint("tsm_r50")})
    assert is_current({"run": "tsn_r50"})  # entries from before fingerprints: reused as they were
    assert not is_current({"run": "no_such_model", "fingerprint": "0"})


def test_time_split_finds_convs_grouped_convs_and_memory_bound_ops():
    """The profile split of one call: dense and depthwise convs are compute, the depthwise one
    also grouped; the rest (here a large copy) is named among the memory-bound ops."""
    from zoo.benchmark.bound import is_compute_op, op_label, reason, time_split

    dense, depthwise = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1, groups=16)
    big = torch.zeros(4_000_000)

    def fn(x):
        big.add_(1.0)  # memory-bound: 16 MB read and written, no MACs
        return depthwise(dense(x)).relu()

    x = torch.randn(1, 16, 32, 32)
    split = time_split(fn, x, macs=1e9)  # the rate is only checked to be positive (rounded to 0.1)
    assert 0 < split["grouped_conv_share"] < split["compute_share"] < 1
    assert "add_" in split["top_other_ops"] and split["compute_gmacs_per_s"] > 0
    assert is_compute_op("mkldnn::_convolution_pointwise") and is_compute_op("aten::addmm")
    assert not is_compute_op("aten::copy_") and op_label("## Call CompiledFxGraph fx ##") == "inductor's fused kernels"
    words = reason({"compute_share": 0.5, "grouped_conv_share": 0.3, "compute_gmacs_per_s": 100.0,
                    "top_other_ops": {"copy_": 2.0, "add_": 1.0}}, 1000.0, "bf16")
    assert words == ("memory-bound ops take 50% of the time (copy_, add_); grouped/depthwise convs take 30% of the "
                     "time (few multiply-adds per byte); the convs and matmuls themselves run at 10% of the bf16 conv "
                     "peak (small channel counts or 3D shapes the kernels tile poorly)")


def test_grouped_convs_are_read_from_the_groups_argument_of_every_conv_form():
    """Eager oneDNN convs, and the compiled graph's fused ones, whose residual-add form takes the
    residual before the weight: a bottleneck's last conv (64 out of 16 in) is not grouped."""
    from zoo.benchmark.bound import _groups

    conv = [None, None, None, [1, 1], [1, 1], [1, 1]]
    assert _groups("aten::mkldnn_convolution", [[1, 32, 8, 8], [32, 1, 3, 3], [32]], conv + [32]) == 32
    assert _groups("mkldnn::_convolution_pointwise", [[1, 16, 8, 8], [32, 16, 3, 3], [32]], conv + [1, "relu"]) == 1
    residual = [[1, 64, 8, 8], [1, 16, 8, 8], [64, 16, 1, 1], [64]]
    assert _groups("mkldnn::_convolution_pointwise_", residual, [None] + conv + [1, "sum"]) == 1
    assert _groups("mkldnn::_convolution_pointwise_", residual, [None] + conv + [4, "sum"]) == 4
    assert _groups("aten::addmm", [[10], [1, 5], [5, 10]], [None, None, None, 1, 1]) == 1

