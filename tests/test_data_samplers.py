"""Samplers against the reference protocols (hand-computed cases from the TSM/PAN/PySlowFast code)."""
import numpy as np
import pytest

from zoo.data.samplers import DenseSampler, SegmentSampler, build_sampler, dense_clip_starts, segment_offsets
from zoo.models import ModelInfo


def _info(**kw):
    base = dict(name="t", family="t", paper="-", num_frames=8, num_segments=8)
    base.update(kw)
    return ModelInfo(**base)


# The reference table (pan_tsm.md §3.2) is 1-based: a 40-frame video with T = 8.
def test_segment_test_indices_match_reference_table():
    (clip,) = SegmentSampler(8)(40)
    assert (clip + 1).tolist() == [3, 8, 13, 18, 23, 28, 33, 38]


def test_twice_sample_adds_segment_starts():
    a, b = SegmentSampler(8, num_clips=2)(40)
    assert (a + 1).tolist() == [3, 8, 13, 18, 23, 28, 33, 38]
    assert (b + 1).tolist() == [1, 6, 11, 16, 21, 26, 31, 36]


def test_pan_four_consecutive_frames_per_segment():
    (offsets,) = segment_offsets(40, 8, 4)
    assert (offsets + 1).tolist() == [3, 7, 12, 17, 21, 26, 31, 35]
    (clip,) = SegmentSampler(8, 4)(40)
    assert len(clip) == 32
    assert (clip[:8] + 1).tolist() == [3, 4, 5, 6, 7, 8, 9, 10]


def test_tsm_dense_sample_wraps_modulo_short_videos():
    clips = SegmentSampler(8, num_clips=10)(40)
    assert len(clips) == 10
    # nf < 64: every window starts at 0 and wraps (table row "dense (nf<64)")
    for c in clips:
        assert (c + 1).tolist() == [1, 9, 17, 25, 33, 1, 9, 17]


def test_tsm_dense_sample_long_video_starts_cover_video():
    clips = SegmentSampler(8, num_clips=10)(100)
    starts = [int(c[0]) for c in clips]
    assert starts == np.linspace(0, 36, 10).astype(int).tolist()
    assert all((np.diff(c) == 8).all() for c in clips)


def test_segment_train_one_random_frame_per_segment():
    rng = np.random.default_rng(0)
    s = SegmentSampler(8, train=True)
    seen = set()
    for _ in range(200):
        (c,) = s(40, rng)
        # avg = 5: frame k*5 + randint(5) lies in segment k
        assert ((c // 5) == np.arange(8)).all()
        seen.update(c.tolist())
    assert len(seen) == 40  # every frame can be drawn


def test_segment_short_videos():
    rng = np.random.default_rng(0)
    (c,) = SegmentSampler(8, train=True)(5, rng)  # n <= T: zeros (reference)
    assert c.tolist() == [0] * 8
    (c,) = SegmentSampler(8, train=True)(10, rng)  # T < n < 2T: sorted random offsets
    assert (np.diff(c) >= 0).all() and c.max() < 10
    (c,) = SegmentSampler(8)(4)  # test: centres without the guard, clamped
    assert c.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    (c,) = SegmentSampler(8, 4)(2)  # fewer frames than one segment: clamp to the last frame
    assert c.max() == 1 and c.min() == 0


def test_dense_test_single_clip_centred():
    (c,) = DenseSampler(8, 8)(100)  # span 64, delta 36, start 18
    assert c.tolist() == [18, 27, 36, 45, 54, 63, 72, 81]  # floor(linspace(18, 81, 8)) (PySlowFast)


def test_dense_multi_clip_starts():
    assert dense_clip_starts(36, 3).tolist() == [0, 18, 36]
    assert dense_clip_starts(30, 3, "slowfast").tolist() == [0, 10, 20]
    clips = DenseSampler(4, 2, num_clips=3)(20)
    assert [c.tolist() for c in clips] == [[0, 2, 4, 7], [6, 8, 10, 13], [12, 14, 16, 19]]


def test_dense_short_video_clamp_and_loop():
    (c,) = DenseSampler(8, 8)(40)
    assert c.tolist() == [0, 9, 18, 27, 36, 39, 39, 39]  # PySlowFast: repeat the last frame
    (c,) = DenseSampler(8, 8, short="loop")(40)
    assert c.tolist() == [0, 9, 18, 27, 36, 5, 14, 23]


def test_dense_train_random_start_within_video():
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(50):
        (c,) = DenseSampler(8, 4, train=True)(100, rng)
        assert c.min() >= 0 and c.max() < 100 and c[-1] - c[0] == 31
        starts.add(int(c[0]))
    assert len(starts) > 10


def test_build_sampler_reads_info():
    seg = build_sampler(_info(num_frames=16, num_segments=4, frames_per_segment=4, test_views=(2, 1)))
    clips = seg(40)
    assert isinstance(seg, SegmentSampler) and len(clips) == 2 and all(len(c) == 16 for c in clips)
    dense = build_sampler(_info(sampling="dense", num_segments=1, num_frames=8, sampling_rate=8, test_views=(10, 3)))
    assert isinstance(dense, DenseSampler) and len(dense(300)) == 10
    assert len(build_sampler(_info(test_views=(10, 3)), train=True)(40, np.random.default_rng(0))) == 1


def test_errors():
    with pytest.raises(ValueError, match="no frames"):
        DenseSampler(8)(0)
    with pytest.raises(ValueError, match="short"):
        DenseSampler(8, short="pad")
    with pytest.raises(ValueError, match="one clip"):
        SegmentSampler(8, train=True, num_clips=2)


def test_centre_frame_is_the_one_frame_samplers_pick():
    """PAN Full/En: after each segment's 4 consecutive frames comes the frame the official RGB
    loader (new_length=1) picks there: the segment centre at test time, up to 3 frames from the
    PA segment's first."""
    from zoo.data.samplers import SegmentSampler

    for n in (40, 57, 100, 301):
        clip = SegmentSampler(8, 4, centre_frame=True)(n)[0].reshape(8, 5)
        pa = SegmentSampler(8, 4)(n)[0].reshape(8, 4)
        rgb = SegmentSampler(8, 1)(n)[0]
        assert (clip[:, :4] == pa).all() and (clip[:, 4] == rgb).all()
        assert ((clip[:, 4] - clip[:, 0]) >= 0).all() and ((clip[:, 4] - clip[:, 0]) <= 3).all()
        assert (rgb == [int(n / 8 / 2 + n / 8 * k) for k in range(8)]).all()
    two = SegmentSampler(8, 4, num_clips=2, centre_frame=True)(100)
    assert [c.shape for c in two] == [(40,), (40,)] and (two[1].reshape(8, 5)[:, 4] == [int(12.5 * k) for k in range(8)]).all()
    train = SegmentSampler(8, 4, train=True, centre_frame=True)(100, np.random.default_rng(0))[0].reshape(8, 5)
    assert ((train[:, 4] >= np.arange(8) * 12) & (train[:, 4] < np.arange(1, 9) * 12 + 1)).all()


def test_shifted_clips_are_tcp_ten_clips_sample():
    """TCPNet's ten_clips_sample (its K400 test protocol): a 100-frame video, 8 segments (tick 12.5),
    10 clips whose segments start tick/10 * k later for k = 1..9, then the segment starts (k = 0)."""
    clips = SegmentSampler(8, num_clips=10, clips="shifted")(100)
    assert len(clips) == 10
    assert clips[0].tolist() == [1, 13, 26, 38, 51, 63, 76, 88]   # int(1.25 + 12.5 j)
    assert clips[4].tolist() == [6, 18, 31, 43, 56, 68, 81, 93]   # int(6.25 + 12.5 j)
    assert clips[8].tolist() == [11, 23, 36, 48, 61, 73, 86, 98]  # int(11.25 + 12.5 j)
    assert clips[9].tolist() == [0, 12, 25, 37, 50, 62, 75, 87]   # int(12.5 j)
    info = _info(test_views=(10, 3), segment_clips="shifted")
    assert [c.tolist() for c in build_sampler(info)(100)] == [c.tolist() for c in clips]
    assert len(build_sampler(info, train=True)(100, np.random.default_rng(0))) == 1  # training: one random clip
    (single,) = SegmentSampler(8, clips="shifted")(40)  # one clip: the segment centres, as every model
    assert (single + 1).tolist() == [3, 8, 13, 18, 23, 28, 33, 38]
    with pytest.raises(ValueError, match="segment clips"):
        SegmentSampler(8, clips="wide")
    with pytest.raises(ValueError, match="segment_clips"):
        _info(segment_clips="wide")


def test_dense_sample_windows_in_training_too():
    """TSM's --dense_sample (BQN's Kinetics recipe): 16 segments of 3 frames, starts 64 // 16 = 4 apart;
    training draws the window's start as TSM (randint(0, n - 64)), test spreads N windows, one is centred;
    a video shorter than the window wraps around."""
    info = _info(num_frames=48, num_segments=16, frames_per_segment=3, test_views=(10, 3), segment_clips="dense_sample")
    starts = set()
    for seed in range(40):
        (clip,) = build_sampler(info, train=True)(100, np.random.default_rng(seed))
        segs = clip.reshape(16, 3)
        assert (np.diff(segs[:, 0]) == 4).all() and (segs - segs[:, :1] == [0, 1, 2]).all()
        starts.add(int(segs[0, 0]))
    assert starts <= set(range(36)) and len(starts) > 10  # randint(0, 36): 0 .. 35
    tests = build_sampler(info)(100)
    assert [int(c[0]) for c in tests] == np.linspace(0, 36, 10).astype(int).tolist()
    (one,) = build_sampler(info, num_clips=1)(100)
    assert one.reshape(16, 3)[:, 0].tolist() == [18 + 4 * k for k in range(16)]
    (short,) = build_sampler(info, train=True)(50, np.random.default_rng(0))
    assert short.reshape(16, 3)[:, 0].tolist() == [(4 * k) % 50 for k in range(16)]
    assert "dense windows" in repr(build_sampler(info))
