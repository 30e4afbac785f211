"""Model cards: committed cards are current, every number comes from model_info or the results file."""
import json
import os

import zoo
from zoo.cli import main
from zoo.benchmark.cards import PLOT_NAME, plot, render_all, render_card, render_index
from zoo.benchmark.results import load_results
from zoo.cli.cards import DEFAULT_DEPLOY, DEFAULT_RESULTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARDS = os.path.join(ROOT, "model_cards")


def _bench(run, shared, top1, gflops, **extra):
    return dict(run=run, shared_with=shared, model_args={"backbone": "resnet18"}, frames=8, size=32,
                params=11_180_000, gflops=gflops, top1=dict(zip(("normal", "reversed", "shuffled"), top1)),
                top5={"normal": 100.0, "reversed": 61.5, "shuffled": 90.0}, twin_acc=extra.get("twin", 97.0),
                bf16_top1_agreement=0.99, fp32_max_rel_dlogit=2e-6, train_seconds=75.0)


def _model(name, bench, eager=776.0, fast=320.0, bf16=121.0):
    info = zoo.model_info(name)
    return dict(family=info.family, params=int(info.ref_params_m * 1e6) + 1234, gflops=info.ref_gflops + 0.011,
                input_shape=list(info.input_shape), views=list(info.test_views),
                latency=dict(eager_fp32_ms=eager, fast_fp32_ms=fast, fast_bf16_ms=bf16, clips_per_s_fp32=1e3 / fast,
                             clips_per_s_bf16=1e3 / bf16, speedup_fp32=eager / fast, speedup_bf16=eager / bf16,
                             peak_rss_mib=1234.5),
                bench=bench)


def fixture_results():
    """A results file in the `zoo compare` schema: TSN order-blind, TSM/PAN Lite order-sensitive."""
    return {
        "command": "python benchmarks/compare.py --out benchmarks/results/compare.json",
        "date": "2026-11-22 04:10:00 UTC",
        "versions": {"python": "3.11.7", "zoo": "0.1.0", "torch": "2.14.1+cu130"},
        "machine": {"cpu": "Intel(R) Xeon(R) Processor", "logical_cpus": 2, "amx_bf16": True, "avx512_bf16": True,
                    "platform": "Linux-6.18", "loadavg_at_start": [1.0, 1.1, 1.2], "threads": 2},
        "quick": False,
        "settings": {
            "seed": 0,
            "latency": {"batch": 1, "threads": 2, "warmup": 2, "reps": 5, "input": "canonical (info.input_shape)",
                        "timing": "median seconds per call", "memory": "ru_maxrss of a fresh process"},
            "data": {"name": "SynthMotion", "difficulty": "easy", "classes": ["a", "b", "c", "d"],
                     "twins": [["a", "b"], ["c", "d"]], "per_class": 48, "frames": 32, "size": 32,
                     "train_videos": 288, "val_videos": 96},
            "train": {"epochs": 6, "batch_size": 8, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
                      "warmup_epochs": 1, "schedule": "cosine", "threads": 2, "amp": "none"},
        },
        "models": {
            "tsn_r50": _model("tsn_r50", _bench("tsn_r50", [], (47.9, 47.9, 46.8), 0.296, twin=51.0), 700.0, 310.0),
            "tsm_r50": _model("tsm_r50", _bench("tsm_r50", ["tsm_r101"], (95.8, 2.1, 40.0), 0.297)),
            "tsm_r101": _model("tsm_r101", _bench("tsm_r50", ["tsm_r101"], (95.8, 2.1, 40.0), 0.297), 1500.0),
            "pan_lite_r50": _model("pan_lite_r50", _bench("pan_lite_r50", [], (99.0, 1.0, 35.4), 0.318)),
        },
    }


def _row(card, first_cell):
    """The cells of the markdown table row whose first cell is ``first_cell``."""
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f"no row {first_cell!r} in card")


def test_committed_cards_match_generator():
    """Every registered model has a card, and the committed cards equal what model_info and the
    committed results file (or its absence: 'not measured') produce now."""
    results = load_results(os.path.join(ROOT, DEFAULT_RESULTS))
    deploy = load_results(os.path.join(ROOT, DEFAULT_DEPLOY))
    for path, text in render_all(results, CARDS, DEFAULT_RESULTS, deploy).items():
        assert os.path.isfile(path), f"{os.path.relpath(path, ROOT)} is missing: run `zoo cards`"
        with open(path) as f:
            assert f.read() == text, f"{os.path.relpath(path, ROOT)} is stale: run `zoo cards`"
    assert os.path.getsize(os.path.join(CARDS, PLOT_NAME)) > 0


def test_card_numbers_come_from_model_info_and_results():
    results = fixture_results()
    entry, info = results["models"]["tsm_r50"], zoo.model_info("tsm_r50")
    card = render_card("tsm_r50", results, notes_dir=None)
    ref = _row(card, "reference (`model_info`)")
    assert ref[:2] == [f"{info.ref_params_m:.2f}", f"{info.ref_gflops:.2f}"]
    measured = _row(card, "measured (`zoo compare`)")
    assert measured[:2] == [f"{entry['params'] / 1e6:.2f}", f"{entry['gflops']:.2f}"]
    assert _row(card, "top-1 %") == [f"{v:.1f}" for v in entry["bench"]["top1"].values()]
    lat = entry["latency"]
    assert _row(card, "`zoo.optimize` fp32")[0] == f"{lat['fast_fp32_ms']:.1f}"
    assert _row(card, "`zoo.optimize` bf16")[2] == f"{lat['speedup_bf16']:.2f}×"
    # compiled timings, when measured, get their own rows and the path compile="auto" keeps
    lat.update(compiled_fp32_ms=400.0, compile_fp32_s=12.0, compiled_bf16_ms=60.0, compile_bf16_s=13.0,
               path_fp32="not compiled", path_bf16="compiled")
    compiled = render_card("tsm_r50", results, notes_dir=None)
    assert _row(compiled, "`zoo.optimize` bf16, `compile=True` (compiles in 13 s)")[:3] == \
        ["60.0", "16.67", f"{lat['eager_fp32_ms'] / 60.0:.2f}×"]
    assert "keeps the not compiled path in fp32 and the compiled one in bf16" in compiled
    assert "| 320.0 / 60.0 c |" in render_index(results)
    w = zoo.models.model_weights("tsm_r50")[0]
    pub = w.results[0]
    assert _row(card, f"`{w.tag}`")[:4] == [pub.dataset, str(pub.top1), "", pub.views]
    # derived statements follow the numbers; shared runs are named
    assert "normal − reversed = +93.7 points" in card and "Reversed order: 2.1 % is below chance" in card
    assert "shared by `tsm_r50`, `tsm_r101`" in card and "identical" in card
    assert "Intel(R) Xeon(R) Processor, 2 threads" in card and "batch 1" in card and "seed 0" in card
    assert "1 multiply-add = 1 FLOP" in card and results["command"] in card
    assert "On the bench val split, bf16 and fp32 agree on 99.00 % of top-1 predictions." in card
    # the held-out agreement set, with where the flips sit
    entry["bench"].update(bf16_top1_agreement=0.9951, bf16_agreement_videos=608, bf16_flip_gaps=[0.0004, 0.0021, 0.003],
                          near_tie_fraction=0.1)
    results["settings"]["numerics"] = {"near_tie": 0.01}
    assert ("On 608 SynthMotion videos (val split and a held-out set), bf16 and fp32 agree on 99.51 % of top-1 "
            "predictions; each of the 3 that flip is within 0.0030 of a tie in fp32 probability (10 % of the videos "
            "are within 0.01).") in render_card("tsm_r50", results, None)
    # timings kept from an earlier run (same latency settings) say which run measured them
    assert "Timings measured by" not in card
    entry["latency"]["measured_by"] = {"command": "zoo compare --remeasure", "date": "2026-11-21 10:00:00 UTC",
                                       "zoo_commit": "abc1234"}
    assert ("Timings measured by `zoo compare --remeasure` on 2026-11-21 10:00:00 UTC (zoo commit abc1234)"
            in render_card("tsm_r50", results, None))
    # a changed number in either source changes the card
    results["models"]["tsm_r50"]["bench"]["top1"]["reversed"] = 3.3
    assert _row(render_card("tsm_r50", results, None), "top-1 %")[1] == "3.3"
    tsn = render_card("tsn_r50", results, None)
    assert "Reversed order: 47.9 % is above chance" in tsn and "51.0 % right is at chance" in tsn


def test_unmeasured_model_and_index():
    results = fixture_results()
    card = render_card("i3d_inception_v1", results, None)
    assert "Not measured yet — run `zoo compare`." in card and "## Published accuracy" in card
    index = render_index(results)
    assert index.count("\n| [") == len(zoo.list_models())
    row = _row(index, "[tsm_r101](tsm_r101.md)")
    assert row[4] == "95.8 / 2.1 / 40.0 (`tsm_r50`)" and row[5].startswith("320.0 / 121.0")
    assert "not measured" in _row(index, "[p3d_63](p3d_63.md)")[4]
    assert "not measured yet" in render_index(None)


def test_notes_are_appended(tmp_path):
    (tmp_path / "tsm_r50.md").write_text("The shift reads the direction of motion.\n")
    card = render_card("tsm_r50", None, notes_dir=str(tmp_path))
    assert "## Notes\n\nThe shift reads the direction of motion.\n" in card
    assert "## Notes" not in render_card("tsm_r50", None, notes_dir=None)
    (tmp_path / "family_tsm.md").write_text("Every TSM shifts.\n")  # a family's notes come first, on each card
    assert "## Notes\n\nEvery TSM shifts.\n\nThe shift reads" in render_card("tsm_r50", None, notes_dir=str(tmp_path))
    assert "Every TSM shifts." in render_card("tsm_r101", None, notes_dir=str(tmp_path))


def test_plot_writes_png(tmp_path):
    for results, name in ((fixture_results(), "a.png"), (None, "b.png")):
        path = plot(results, str(tmp_path / name))
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 10_000


def test_cli_check_detects_tampering(tmp_path, capsys):
    res = tmp_path / "compare.json"
    res.write_text(json.dumps(fixture_results()))
    out = tmp_path / "cards"
    assert main(["cards", "--results", str(res), "--out", str(out), "--check"]) == 1  # nothing written yet
    assert main(["cards", "--results", str(res), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted([f"{n}.md" for n in zoo.list_models()] + ["README.md", PLOT_NAME])
    assert main(["cards", "--results", str(res), "--out", str(out), "--check"]) == 0
    card = out / "tsm_r50.md"
    card.write_text(card.read_text().replace("95.8", "96.8"))
    capsys.readouterr()
    assert main(["cards", "--results", str(res), "--out", str(out), "--check"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"stale: {card}"
    assert main(["cards", "--results", str(tmp_path / "nope.json"), "--out", str(out)]) == 2


def test_deploy_section_shows_every_path_and_the_int8_verdict():
    """The deployment section and index column come from a deployment benchmark row."""
    from zoo.benchmark.deploy import _row as deploy_row

    ms = {"eager_fp32": 800.0, "fast_fp32": 400.0, "compiled_fp32": 320.0, "fast_bf16": 250.0, "compiled_bf16": 200.0,
          "ort_fp32": 500.0, "ort_int8": 160.0, "pt2e_int8": 260.0}
    agreement = {"run": "tsm_r50", "calibration_videos": 32,
                 "onnxruntime": {"top1_agreement": 0.9934, "videos": 608, "convs_int8": [20, 20]},
                 "pt2e": {"top1_agreement": 0.9967, "videos": 608, "convs_int8": [20, 20]}}
    deploy = {"command": "benchmarks/deploy.py", "date": "2026-12-02", "machine": {"cpu": "X", "threads": 2},
              "rows": [deploy_row("tsm_r50", {"ms": ms, "input_shape": [3, 8, 224, 224]}, agreement)]}
    card = render_card("tsm_r50", None, None, deploy=deploy)
    assert _row(card, "eager fp32 (as built)") == ["800.0", "1.00×"]
    assert _row(card, 'onnxruntime int8 (`zoo export --int8`; `int8_backend="onnxruntime"`)') == ["160.0", "5.00×"]
    assert "runs 1.25× as fast as bf16 (`compiled_bf16`)" in card and "99.34 % of 608" in card
    assert ("(onnxruntime: the fastest of the per-layer backend and the whole-model backends with the most convs "
            "in int8)") in card
    assert "Targets ≥ 1.5× bf16 at 99 % agreement: not met." in card and "pt2e 99.67 % with 20 of 20 convs in int8" in card
    assert "onnxruntime fp32 is slower than the fp32 fast path (`compiled_fp32`): 0.64× its speed." in card
    assert "| 500 / 160 (onnxruntime) / 1.25× / 99.3 % |" in render_index(None, deploy=deploy)
    assert "Not measured yet — run `python -m zoo.benchmark.deploy`." in render_card("tsn_r50", None, None, deploy=deploy)


def test_index_notes_are_appended(tmp_path):
    (tmp_path / "README.md").write_text("**Not built: X.** Because.\n")
    from zoo.benchmark.cards import render_index

    index = render_index(None, notes_dir=str(tmp_path))
    assert index.rstrip().endswith("## Notes\n\n**Not built: X.** Because.")
    assert "## Notes" not in render_index(None)
