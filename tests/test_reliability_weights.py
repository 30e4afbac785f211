"""The weights cache as an attacker or a careless user meets it: it deletes only the staging
directories it made (never through a symbolic link), every network read times out and retries a
bounded number of times, and cached files (releases and the mapped state dicts) are trusted only
while their content is the one recorded. Loopback servers (127.0.0.1) and local files only."""
import dataclasses
import hashlib
import json
import os
import socket
import time

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.models import HashMismatch, Weights, WeightsUnavailable, build_pretrained, fetch_files
from zoo.models._hub import CacheError, clean_staging

from test_reliability import _dead_pid, _one_line_error
from test_weights_hub import _logits, _staging_dirs, _tsm_release


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setenv("ZOO_NET_TIMEOUT", "0.5")
    monkeypatch.setenv("ZOO_NET_RETRIES", "1")
    return tmp_path / "cache" / "weights"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import numpy as np

    from zoo.data import synth
    path = str(tmp_path_factory.mktemp("v") / "v.mp4")
    synth.write_video(path, synth.render_clip("moving_left", np.random.default_rng(0), 32, 8, "easy"), fps=15)
    return path


@pytest.fixture
def silent():
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def _served(server, name="release.pth", size=1 << 16, **changes):
    data = os.urandom(size)
    (open(os.path.join(server.root, name), "wb")).write(data)
    return Weights("t", 2, "kinetics400", (f"{server.url}/ok/{name}",), model="m", **changes), \
        hashlib.sha256(data).hexdigest()


# -- the cache deletes only what it created ---------------------------------------------------------
def test_a_symlinked_partial_directory_is_never_followed(cache, server, tmp_path):
    """The attack of the issue: ``weights/.partial`` a link to another folder whose subfolders have
    number names; a failed fetch (hash mismatch) must leave that folder whole."""
    victim = tmp_path / "victim"
    for year in ("2024", "2025"):
        (victim / year).mkdir(parents=True)
        (victim / year / "notes.txt").write_text(year)
    cache.mkdir(parents=True)
    os.symlink(victim, cache / ".partial")
    dead = _dead_pid()
    os.symlink(victim, cache / f".zoo-staging-{dead}-planted")  # a staging name, but a link: not zoo's
    record, actual = _served(server, digests=("0" * 64,))
    with pytest.raises(HashMismatch):
        fetch_files(record, progress=False)
    assert sorted(p.name for p in victim.iterdir()) == ["2024", "2025"]
    assert all((victim / y / "notes.txt").read_text() == y for y in ("2024", "2025"))
    assert [p.name for p in _staging_dirs(cache)] == [f".zoo-staging-{dead}-planted"]
    assert (cache / f".zoo-staging-{dead}-planted").is_symlink()
    good = dataclasses.replace(record, digests=(actual,))
    assert fetch_files(good, progress=False)[0][1] == actual  # and the cache still works beside them


def test_only_real_staging_directories_of_gone_processes_are_removed(cache):
    cache.mkdir(parents=True)
    dead = _dead_pid()
    gone = cache / f".zoo-staging-{dead}-k3j9"
    gone.mkdir()
    (gone / "release.pth").write_bytes(b"half")
    kept_inside = cache / f".zoo-staging-{dead}-withdir"
    (kept_inside / "sub").mkdir(parents=True)  # zoo never makes a directory there: not removed
    live = cache / ".zoo-staging-1-abcd"  # pid 1 runs
    live.mkdir()
    lookalikes = [cache / f".zoo-staging-{dead}", cache / f"zoo-staging-{dead}-x", cache / str(dead)]
    for p in lookalikes:
        p.mkdir()
    assert clean_staging() == [gone.name]
    assert not gone.exists() and (kept_inside / "sub").is_dir() and live.is_dir()
    assert all(p.is_dir() for p in lookalikes)


def test_a_failed_fetch_leaves_no_staging_directory(cache, silent):
    record = Weights("t", 2, "kinetics400", (f"{silent}/release.pth",), model="m")
    with pytest.raises(WeightsUnavailable):
        fetch_files(record, progress=False)
    assert not _staging_dirs(cache)


def test_a_symlink_in_the_cache_structure_is_refused_in_one_line(cache, server, tmp_path, capsys, video):
    made = tmp_path / "made"
    made.mkdir()
    record, src, paths, x = _tsm_release(made)
    os.replace(paths[0], os.path.join(server.root, paths[0].name))
    record = dataclasses.replace(record, files=(f"{server.url}/ok/{paths[0].name}",))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache.mkdir(parents=True)
    os.symlink(elsewhere, cache / "mapped")
    with pytest.raises(CacheError, match=r"mapped is a symbolic link .*remove the link"):
        build_pretrained(record, progress=False)
    assert list(elsewhere.iterdir()) == []
    os.symlink(elsewhere, cache / "urls")
    assert main(["predict", "tsn_r50", video, "--weights", f"{server.url}/ok/w.pth"]) == 2
    _one_line_error(capsys, "urls is a symbolic link")


# -- nothing hangs -----------------------------------------------------------------------------------
def test_a_server_that_never_answers_fails_in_one_line(cache, silent, monkeypatch, capsys, video):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", f"{silent}/mirror")
    t0 = time.monotonic()
    assert main(["weights", "fetch", "r2plus1d_18.kinetics400", "--no-progress"]) == 2
    err = _one_line_error(capsys, f"{silent}/mirror/r2plus1d_18-91a641e6.pth", "no answer within 0.5 s",
                          "ZOO_NET_TIMEOUT", "ZOO_WEIGHTS_MIRROR", "(2 attempts)")
    assert "%" not in err and "it/s" not in err  # no progress bar before the error
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR")
    with pytest.raises(WeightsUnavailable, match=f"cannot download {silent}/w.pth .*no answer within 0.5 s"):
        zoo.build("tsn_r50", weights=f"{silent}/w.pth")
    assert main(["predict", "tsn_r50", video, "--weights", f"{silent}/w.pth", "--no-optimize"]) == 2
    _one_line_error(capsys, f"{silent}/w.pth", "no answer within 0.5 s")
    assert time.monotonic() - t0 < 60  # 2 attempts of 0.5 s and 1 s of backoff each, not minutes
    assert not _staging_dirs(cache)


def test_a_download_that_stalls_mid_file_fails_and_leaves_nothing(cache, server):
    record, _ = _served(server, size=1 << 20)
    stalled = dataclasses.replace(record, files=(record.files[0].replace("/ok/", "/stall/"),))
    with pytest.raises(WeightsUnavailable, match=r"stalled: no data for 0.5 s after 524288 bytes"):
        fetch_files(stalled, progress=False)
    assert not (cache / "release.pth").exists() and not _staging_dirs(cache)


def test_a_busy_server_is_retried_after_a_backoff(cache, server):
    record, actual = _served(server)
    busy = dataclasses.replace(record, files=(record.files[0].replace("/ok/", "/busy/"),))
    assert fetch_files(busy, progress=False)[0][1] == actual
    assert server.requests == ["/busy/release.pth"] * 2


def test_a_checkpoint_url_is_cached_and_pinned(cache, server, tmp_path):
    src = zoo.build("tsn_r50", backbone="resnet18", num_classes=3).eval()
    torch.save(zoo.models.zoo_checkpoint(src), os.path.join(server.root, "run.pt"))
    x = torch.randn(1, 3, 8, 32, 32)
    url = f"{server.url}/ok/run.pt"
    model = zoo.build("tsn_r50", weights=url, progress=False)
    assert torch.equal(_logits(model, x), _logits(src, x))
    (cached,) = (cache / "urls").glob("*-run.pt")
    zoo.build("tsn_r50", weights=url, progress=False)
    assert server.requests == ["/ok/run.pt"]  # the second build read the cache
    cached.unlink()
    open(os.path.join(server.root, "run.pt"), "wb").write(b"another file under the same address")
    with pytest.raises(HashMismatch, match="pinned"):
        zoo.build("tsn_r50", weights=url, progress=False)


# -- trusted by content -----------------------------------------------------------------------------
def _edit_in_place(path, data: bytes):
    """Overwrite ``path``'s bytes (same size) and put its mtime back, as the issue's attacker did."""
    st = os.stat(path)
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.path.getsize(path) == st.st_size


@pytest.mark.parametrize("published", [True, False])
def test_a_cached_file_edited_in_place_with_its_mtime_restored_is_refused(cache, server, published):
    record, actual = _served(server, size=1 << 12)
    if published:
        record = dataclasses.replace(record, digests=(actual,))
    [(path, _)] = fetch_files(record, progress=False)
    assert fetch_files(record, progress=False)[0][1] == actual  # unchanged: taken from its record
    _edit_in_place(path, os.urandom(1 << 12))
    with pytest.raises(HashMismatch, match="published" if published else "pinned"):
        fetch_files(record, progress=False)


def test_a_mapped_state_dict_is_used_only_while_it_matches_its_record(cache, server, tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    record, src, paths, x = _tsm_release(made)
    os.replace(paths[0], os.path.join(server.root, paths[0].name))
    record = dataclasses.replace(record, files=(f"{server.url}/ok/{paths[0].name}",))
    expect = _logits(src, x)
    build_pretrained(record, progress=False)
    (mapped,) = (cache / "mapped").glob("*.pt")
    record_file = mapped.with_name(mapped.name + ".verified.json")
    original = mapped.read_bytes()
    # a planted state dict (another network's weights) under the mapped name, its record left as it was
    other = zoo.build("tsm_r50", num_classes=400, backbone="resnet18").state_dict()
    torch.save(other, mapped)
    assert torch.equal(_logits(build_pretrained(record, progress=False), x), expect)
    assert mapped.read_bytes() == original  # rebuilt from the release
    # the same file edited in place, its mtime restored: re-hashed (the ctime moved) and rebuilt
    planted = bytearray(original)
    planted[-100:-90] = os.urandom(10)
    _edit_in_place(mapped, bytes(planted))
    assert torch.equal(_logits(build_pretrained(record, progress=False), x), expect)
    assert mapped.read_bytes() == original
    # a planted file without a record, or with a record of other sources: rebuilt too
    record_file.unlink()
    torch.save(other, mapped)
    assert torch.equal(_logits(build_pretrained(record, progress=False), x), expect)
    rec = json.loads(record_file.read_text())
    rec["sources"] = ["0" * 64]
    record_file.write_text(json.dumps(rec))
    assert torch.equal(_logits(build_pretrained(record, progress=False), x), expect)
    assert json.loads(record_file.read_text())["sources"] == [hashlib.sha256(
        open(cache / paths[0].name, "rb").read()).hexdigest()]
