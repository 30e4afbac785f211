"""The evaluation harness on an in-memory dataset that follows the zoo.data item contract."""
import json
import os
import shutil

import pytest
import torch
import torch.nn as nn

from zoo.engine import evaluate, load_eval, reaggregate, save_eval
from zoo.benchmark.latency import randomize_bn_stats
from zoo.engine.harness import reorder_frames
from zoo.engine.metrics import compute_metrics


class FakeVideos(torch.utils.data.Dataset):
    """Items ``{"video": [V, 3, T, H, W], "label", "index", "path"}``; ``bad`` indices fail."""

    def __init__(self, n=9, k=3, views=2, t=4, size=8, bad=()):
        g = torch.Generator().manual_seed(0)
        self.videos = torch.randn(n, views, 3, t, size, size, generator=g)
        self.labels = [i % k for i in range(n)]
        self.bad = set(bad)
        self.class_names = [f"class{c}" for c in range(k)]
        self.label_map_hash = "fake"

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {"label": self.labels[i], "index": i, "path": f"v{i}.mp4"}
        if i in self.bad:
            return {**item, "video": None, "error": "moov atom not found"}
        return {**item, "video": self.videos[i]}


def fake_collate(batch):
    good = [b for b in batch if b["video"] is not None]
    out = {"errors": [b for b in batch if b["video"] is None]}
    if good:
        out.update(video=torch.stack([b["video"] for b in good]), label=torch.tensor([b["label"] for b in good]),
                   index=torch.tensor([b["index"] for b in good]), path=[b["path"] for b in good])
    return out


class OrderProbe(nn.Module):
    """Logits depend on frame order (weighted by time) and on the channels."""

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        torch.manual_seed(0)
        nn.init.normal_(self.fc.weight)

    def forward(self, x):
        w = torch.linspace(-1, 1, x.shape[2])
        return self.fc((x.mean((3, 4)) * w).sum(2))


def test_harness_logits_metrics_and_saved_files(tmp_path):
    ds = FakeVideos(n=9, bad=(4,))
    model = OrderProbe()
    r = evaluate(model, ds, batch_size=2, collate_fn=fake_collate, progress=False)
    # every good video once, in dataset order; the bad one listed with its reason
    assert r.indices == [0, 1, 2, 3, 5, 6, 7, 8]
    assert r.skipped == [{"index": 4, "path": "v4.mp4", "error": "moov atom not found"}]
    assert r.metrics["num_videos"] == 8 and r.metrics["num_skipped"] == 1
    with torch.no_grad():
        direct = torch.stack([model(ds.videos[i]) for i in r.indices])
    torch.testing.assert_close(r.view_logits, direct)
    files = save_eval(r, str(tmp_path))
    for f in files.values():
        assert os.path.getsize(f) > 0
    saved = json.loads(open(files["metrics"]).read())
    ref = compute_metrics(direct, torch.tensor(ds.labels)[r.indices])
    assert saved["video_top1"] == pytest.approx(ref["video_top1"])
    assert saved["skipped"][0]["path"] == "v4.mp4"
    # re-aggregation from the saved logits alone equals recomputing from the direct logits
    back = load_eval(str(tmp_path))
    torch.testing.assert_close(back.view_logits, r.view_logits)
    m = reaggregate(str(tmp_path), "max").metrics
    ref = compute_metrics(direct, torch.tensor(ds.labels)[r.indices], agg="max")
    assert m["video_top1"] == ref["video_top1"] and m["aggregation"] == "max"


def test_temporal_order_diagnostic():
    v = torch.arange(2 * 1 * 1 * 6, dtype=torch.float).reshape(2, 1, 1, 6, 1, 1)
    assert torch.equal(reorder_frames(v, "reversed", [0, 1]), v.flip(3))
    a = reorder_frames(v, "shuffled", [0, 1], seed=3)
    b = reorder_frames(v[1:], "shuffled", [1], seed=3)  # same video, other batch: same permutation
    assert torch.equal(a[1:], b)
    assert sorted(a[0].flatten().tolist()) == v[0].flatten().tolist() and not torch.equal(a, v)
    ds, model = FakeVideos(n=6), OrderProbe()
    normal = evaluate(model, ds, collate_fn=fake_collate, progress=False)
    rev = evaluate(model, ds, collate_fn=fake_collate, progress=False, temporal_order="reversed")
    torch.testing.assert_close(rev.view_logits, 2 * model.fc.bias - normal.view_logits)  # odd in time


def test_harness_rejects_bad_options():
    with pytest.raises(ValueError, match="logit-mean"):
        evaluate(OrderProbe(), FakeVideos(), agg="vote", collate_fn=fake_collate)
    with pytest.raises(ValueError, match="reversed"):
        evaluate(OrderProbe(), FakeVideos(), temporal_order="backwards", collate_fn=fake_collate)


def test_optimized_evaluation_matches_eager():
    import zoo

    model = zoo.build("tsm_r50", num_classes=3, backbone="resnet18", num_segments=4).eval()
    randomize_bn_stats(model)  # non-trivial BN statistics so that the BN folding matters
    ds = FakeVideos(n=5, k=3, views=2, t=4, size=32)
    eager = evaluate(model, ds, batch_size=2, collate_fn=fake_collate, progress=False)
    fast = evaluate(model, ds, batch_size=2, collate_fn=fake_collate, progress=False, optimize=True)
    torch.testing.assert_close(fast.view_logits, eager.view_logits, rtol=1e-4, atol=1e-5)
    assert fast.metrics["video_top1"] == eager.metrics["video_top1"]


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_evaluation_matches_eager_over_two_batch_sizes():
    import zoo

    model = zoo.build("tsm_r50", num_classes=3, backbone="resnet18", num_segments=4).eval()
    randomize_bn_stats(model)
    ds = FakeVideos(n=3, k=3, views=1, t=4, size=32)  # batches of 2 and 1: two static graphs
    eager = evaluate(model, ds, batch_size=2, collate_fn=fake_collate, progress=False)
    fast = evaluate(model, ds, batch_size=2, collate_fn=fake_collate, progress=False, optimize=True, compile=True)
    torch.testing.assert_close(fast.view_logits, eager.view_logits, rtol=1e-4, atol=1e-5)
