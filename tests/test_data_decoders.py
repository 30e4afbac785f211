"""PyAV and frame-folder decoders: equality, selective decoding, and corrupt files."""
import os

import av
import numpy as np
import pytest

from zoo.data import synth
from zoo.data.decoders import DecodeError, FrameFolderDecoder, PyAVDecoder, open_decoder


@pytest.fixture(scope="module")
def lossless(tmp_path_factory):
    root = tmp_path_factory.mktemp("lossless")
    return synth.generate(str(root), classes=["moving_left", "rotating_clockwise"], per_class=2, frames=24, size=32,
                          seed=3, frame_folders=True, lossless=True)


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    root = tmp_path_factory.mktemp("lossy")
    return synth.generate(str(root), classes=["growing", "appearing"], per_class=2, frames=20, size=48, seed=4,
                          frame_folders=True)


def _frames_dir(video):
    d, name = os.path.split(video)
    return os.path.join(d.replace(os.sep + "videos" + os.sep, os.sep + "frames" + os.sep), os.path.splitext(name)[0])


def test_lossless_video_equals_png_frames_exactly(lossless):
    idx = [0, 5, 23, 3, 3, 17, 11]
    for video in lossless.videos:
        with PyAVDecoder(video) as dec:
            a = dec.get_frames(idx)
            assert dec.meta.num_frames == 24
        b = FrameFolderDecoder(_frames_dir(video), "img_{:05d}.png").get_frames(idx)
        assert a.dtype == np.uint8 and a.shape == (7, 32, 32, 3)
        assert np.array_equal(a, b)


def test_lossless_video_equals_rendered_clip(lossless):
    clip = synth.render_clip("moving_left", np.random.default_rng([3, synth.CLASSES.index("moving_left"), 1]), 32, 24)
    with PyAVDecoder(lossless.videos[1]) as dec:
        assert np.array_equal(dec.read_all(), clip)


def test_h264_video_close_to_jpeg_frames(lossy):
    idx = [0, 7, 19]
    with PyAVDecoder(lossy.videos[0]) as dec:
        a = dec.get_frames(idx).astype(float)
        assert dec.meta.codec == "h264" and dec.meta.fps == 15 and dec.meta.num_frames == 20
    b = FrameFolderDecoder(_frames_dir(lossy.videos[0])).get_frames(idx).astype(float)
    assert np.abs(a - b).mean() < 6  # two lossy codecs of the same frames


def _write_long(path, n=90, size=32, gop=10, **container_options):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    with av.open(path, "w", options=container_options) as c:
        s = c.add_stream("libx264", rate=25, options={"g": str(gop), "crf": "20"})
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_selective_decode_equals_full_decode(tmp_path):
    path = _write_long(str(tmp_path / "long.mp4"))
    with PyAVDecoder(path, seek_gap=8) as dec:
        full = dec.read_all()
        assert len(full) == dec.meta.num_frames == 90
        for idx in ([0], [89], [45, 3, 88, 3], list(range(30, 60, 3)), [5, 80]):
            assert np.array_equal(dec.get_frames(idx), full[idx])


def test_open_decoder_dispatch(lossless):
    with open_decoder(lossless.videos[0]) as d:
        assert isinstance(d, PyAVDecoder)
    with open_decoder(_frames_dir(lossless.videos[0]), frames_template="img_{:05d}.png") as d:
        assert isinstance(d, FrameFolderDecoder) and d.meta.num_frames == 24


def test_display_rotation_is_applied(tmp_path):
    img = np.zeros((32, 48, 3), np.uint8)
    img[:8, :8] = 255  # landscape frame, white top-left corner
    p = str(tmp_path / "rot.mp4")
    with av.open(p, "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        s.set_display_rotation(90)  # display rotated 90 degrees counter-clockwise
        for _ in range(3):
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    with PyAVDecoder(p) as dec:
        f = dec.get_frames([1])[0]
        assert dec.meta.rotation == 90
    assert f.shape == (48, 32, 3)  # portrait
    assert f[-4, 4].min() > 200 and f[4, 4].max() < 50  # the corner went to the bottom left


# -- corrupt inputs: every case raises DecodeError naming the file and the reason ---------
def test_zero_bytes(tmp_path):
    p = tmp_path / "zero.mp4"
    p.write_bytes(b"")
    with pytest.raises(DecodeError, match=r"zero\.mp4: empty file \(0 bytes\)"):
        PyAVDecoder(str(p))


def test_missing(tmp_path):
    with pytest.raises(DecodeError, match="nothere.mp4: file not found"):
        PyAVDecoder(str(tmp_path / "nothere.mp4"))


def test_not_a_video(tmp_path):
    p = tmp_path / "text.mp4"
    p.write_text("not a video\n" * 100)
    with pytest.raises(DecodeError, match=r"text\.mp4: cannot open \(InvalidDataError"):
        PyAVDecoder(str(p))


def test_audio_only(tmp_path):
    p = str(tmp_path / "audio.m4a")
    with av.open(p, "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(5):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for pk in s.encode(fr):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    with pytest.raises(DecodeError, match=r"audio\.m4a: no video stream \(streams: audio\)"):
        PyAVDecoder(p)


def test_truncated_moov_at_end(tmp_path, lossy):
    data = open(lossy.videos[0], "rb").read()
    p = tmp_path / "trunc.mp4"
    p.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: the file cannot be opened
    with pytest.raises(DecodeError, match=r"trunc\.mp4: cannot open"):
        PyAVDecoder(str(p))


def test_truncated_faststart_fails_on_missing_frames(tmp_path):
    path = _write_long(str(tmp_path / "fs.mp4"), n=40, movflags="faststart")
    data = open(path, "rb").read()
    p = tmp_path / "fs_trunc.mp4"
    p.write_bytes(data[: len(data) // 2])  # index intact, frames missing
    with PyAVDecoder(str(p)) as dec:
        assert dec.meta.num_frames == 40
        assert dec.get_frames([0, 1]).shape == (2, 32, 32, 3)  # the start still decodes
        with pytest.raises(DecodeError, match=r"fs_trunc\.mp4: truncated or corrupt: frame 39"):
            dec.get_frames([0, 39])


def test_one_frame_video_decodes(tmp_path):
    p = str(tmp_path / "one.mp4")
    synth.write_video(p, np.full((1, 32, 32, 3), 128, np.uint8))
    with PyAVDecoder(p) as dec:
        assert dec.meta.num_frames == 1
        assert dec.get_frames([0, 0, 0]).shape == (3, 32, 32, 3)
        with pytest.raises(DecodeError, match=r"one\.mp4: frame index 5 out of range \(video has 1 frames\)"):
            dec.get_frames([5])


def test_frame_folder_problems(tmp_path, lossless):
    with pytest.raises(DecodeError, match="frame folder not found"):
        FrameFolderDecoder(str(tmp_path / "none"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DecodeError, match="empty frame folder"):
        FrameFolderDecoder(str(empty))
    d = FrameFolderDecoder(_frames_dir(lossless.videos[0]), "img_{:05d}.png")
    with pytest.raises(DecodeError, match="out of range"):
        d.get_frames([24])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "img_00001.jpg").write_bytes(b"not an image")
    with pytest.raises(DecodeError, match=r"img_00001\.jpg: cannot read image"):
        FrameFolderDecoder(str(bad))
