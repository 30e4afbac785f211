"""Clip transforms: one crop/flip for all frames, TSN multi-scale crop grid, test crops, normalisation."""
import numpy as np
import pytest
import torch

from zoo.data.transforms import ClipTransform, fixed_offsets, multiscale_crop_params, to_clip_tensor
from zoo.models import ModelInfo
from zoo.models._info import INCEPTION_MEAN, INCEPTION_STD


def _info(**kw):
    base = dict(name="t", family="t", paper="-", num_frames=4, num_segments=4, crop_size=32, resize_size=40,
                train_jitter=(40, 48))
    base.update(kw)
    return ModelInfo(**base)


def _clip(t=4, h=48, w=64, seed=0):
    """Frames that differ only by a per-frame brightness offset, so any per-frame difference in
    crop or flip would show up as a spatial difference between output frames."""
    base = torch.from_numpy(np.random.default_rng(seed).integers(0, 200, (h, w, 3), dtype=np.uint8))
    frames = torch.stack([base + 10 * i for i in range(t)])
    return to_clip_tensor(frames), base


@pytest.mark.parametrize("sampling", ["segment", "dense"])
def test_train_same_crop_and_flip_on_every_frame(sampling):
    info = _info(sampling=sampling, num_segments=4 if sampling == "segment" else 1)
    clip, _ = _clip()
    tf = ClipTransform(info, train=True)
    rng = np.random.default_rng(0)
    for _ in range(10):
        (view,), _ = tf(clip, 0, rng)
        assert view.shape == (3, 4, 32, 32)
        # per-frame offset only: constant over space (up to uint8 rounding in the resize, 2/255/std)
        diffs = view[:, 1:] - view[:, :1]
        flat = diffs.flatten(2)
        assert (flat - flat.median(-1, keepdim=True).values).abs().max() < 0.05


def test_flip_swaps_labels_with_map():
    info = _info()
    clip, _ = _clip()
    tf = ClipTransform(info, train=True, flip_map={0: 1, 1: 0})
    no_swap = ClipTransform(info, train=True, flip=True)
    labels = {tf(clip, 0, np.random.default_rng(s))[1] for s in range(20)}
    assert labels == {0, 1}
    # the flip happens exactly when the label is swapped: compare with the unflipped transform
    for s in range(10):
        (a,), la = tf(clip, 0, np.random.default_rng(s))
        (b,), lb = no_swap(clip, 0, np.random.default_rng(s))
        assert lb == 0 and torch.equal(a, b)  # same draws, same pixels
    assert {no_swap(clip, 2, np.random.default_rng(s))[1] for s in range(10)} == {2}
    off = ClipTransform(info, train=True, flip=False, flip_map={0: 1})
    assert {off(clip, 0, np.random.default_rng(s))[1] for s in range(10)} == {0}


def test_fixed_offsets_grid():
    # image 100x80, crop 60x40: steps (10, 10)
    offs = fixed_offsets(100, 80, 60, 40)
    assert len(offs) == 13 and len(set(offs)) == 13
    assert {(0, 0), (40, 0), (0, 40), (40, 40), (20, 20), (10, 10), (30, 30)} <= set(offs)


def test_multiscale_crop_sizes():
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(300):
        x, y, w, h = multiscale_crop_params(341, 256, 224, (1, .875, .75, .66), rng)
        sizes.add((w, h))
        assert 0 <= x <= 341 - w and 0 <= y <= 256 - h
    # base 256: int(256*s) = 256, 224, 192, 168; pairs at most one scale step apart
    allowed = [256, 224, 192, 168]
    expect = {(allowed[j], allowed[i]) for i in range(4) for j in range(4) if abs(i - j) <= 1}
    assert sizes == expect


def test_multiscale_snaps_near_crop_size():
    rng = np.random.default_rng(0)
    sizes = {multiscale_crop_params(226, 226, 224, (1.0,), rng)[2:] for _ in range(5)}
    assert sizes == {(224, 224)}  # 226 is within 3 px of 224


def test_test_views_centre_and_three_crops():
    info = _info(resize_size=32, crop_size=32, mean=(0, 0, 0), std=(1, 1, 1))
    # a 32x64 clip (already at the test short side): the crop positions are exact
    x = torch.arange(64, dtype=torch.uint8).view(1, 1, 1, 64).expand(2, 3, 32, 64).contiguous()
    (c,), _ = ClipTransform(info, crops=1)(x, 0)
    assert c[0, 0, 0, 0].item() * 255 == pytest.approx(16)
    views, _ = ClipTransform(info, crops=3)(x, 0)
    assert [round(v[0, 0, 0, 0].item() * 255) for v in views] == [0, 16, 32]  # start, centre, end
    tall = x.transpose(-1, -2).contiguous()  # 64x32: crops along the height
    views, _ = ClipTransform(info, crops=3)(tall, 0)
    assert [round(v[0, 0, 0, 0].item() * 255) for v in views] == [0, 16, 32]
    with pytest.raises(ValueError, match="1 or 3"):
        ClipTransform(info, crops=5)


def test_normalisation_from_info():
    clip = torch.stack([torch.zeros(3, 40, 40, dtype=torch.uint8), torch.full((3, 40, 40), 255, dtype=torch.uint8)])
    i3d = _info(num_frames=2, num_segments=2, mean=INCEPTION_MEAN, std=INCEPTION_STD)
    (v,), _ = ClipTransform(i3d)(clip, 0)
    assert v[:, 0].min().item() == pytest.approx(-1) and v[:, 1].max().item() == pytest.approx(1)
    assert i3d.value_range == (-1.0, 1.0)
    (v,), _ = ClipTransform(_info(num_frames=2, num_segments=2))(clip, 0)  # ImageNet mean/std
    assert v[0, 0, 0, 0].item() == pytest.approx(-0.485 / 0.229, rel=1e-5)


def test_dense_jitter_too_small_is_an_error():
    with pytest.raises(ValueError, match="train_jitter"):
        ClipTransform(_info(sampling="dense", num_segments=1, train_jitter=(16, 20)), train=True)(_clip()[0], 0,
                                                                                              np.random.default_rng(0))
