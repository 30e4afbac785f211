"""Batch scoring (``zoo score``): one model over every video of a manifest (`zoo.data.manifest`),
the results written as Parquet under one directory, resumable after a kill.

What a video becomes (``task``):

- ``predict``: one row: the top-k labels and probabilities under the model's test views and view
  aggregation (as ``zoo predict``), and ``logits``, the mean of the views' logits.
- ``features``: one row: ``features``, the mean of the views' pooled embeddings (as ``zoo features``).
- ``timeline``: one row per sliding window (as ``zoo predict --timeline``): ``window_start`` /
  ``window_end`` in seconds, the top-k labels and probabilities, and ``probs``, the window's class
  probabilities.

Every row has ``id`` and ``path``. The directory ``DIR``:

- ``results/part-00000.parquet``, ...: shard k's rows, the videos of manifest rows ``[k*S, (k+1)*S)``
  (``S``: the shard size), in manifest order, written atomically once the shard is done; the folder
  holds nothing else, so ``pyarrow.parquet.read_table(DIR/results)`` is the whole table;
- ``_errors/part-00000.parquet``, ...: shard k's videos that could not be read (``id``, ``path``,
  ``error``), written just before the shard's rows; ``errors.parquet``: all of them, at the end;
- ``_run.json``: what the run is (model, weights, protocol, task, options, manifest digest, shard
  size: its *identity*), written before any shard, and when the run ends, its counts and versions.

A rerun with the same arguments skips the shards whose rows are on disk and computes the others,
so the tables are those of an uninterrupted run; a shard is never half-written (temporary file
and rename), and the temporary files of a killed run are removed. A different identity (another
model, weights, protocol, task or manifest) is refused: it would mix two runs' rows in one table.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from .._errors import MissingDependency, UsageError
from .._files import atomic_write, atomic_write_text, display_name
from ..data.manifest import ManifestItem
from .config import SCORE_TASKS

__all__ = ["TASKS", "RESULTS_DIR", "ERRORS_FILE", "ClipReader", "ModelRecipe", "Scorer", "finish", "shard_tables", "write_shard", "ShardPlan", "run_local", "check_sources", "is_url", "open_run", "part_name", "read_table", "RUN_FILE"]

TASKS = SCORE_TASKS
RUN_FILE = "_run.json"
RESULTS_DIR = "results"  # only the rows' shards: pyarrow / pandas read the folder as one table
ERRORS_DIR = "_errors"  # per-shard errors ("_" hides them from a reader of DIR as a dataset)
ERRORS_FILE = "errors.parquet"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
STAGING_DIR = "_staging"  # URL videos while they are scored (removed after each)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependency("zoo score writes Parquet with pyarrow: pip install 'zoo[score]'") from None
    return pyarrow


HTTP_SCHEMES = ("http", "https")  # read by zoo._net.download; other schemes by fsspec


def is_url(path: str) -> bool:
    return "://" in path


def _scheme(path: str) -> str:
    return path.split("://", 1)[0].lower()


def check_sources(items: Sequence[ManifestItem]) -> None:
    """Refuse, before any work, a manifest with URLs zoo score cannot read: not http(s), and not a
    scheme fsspec can open here (``s3://`` needs s3fs, ``gs://`` gcsfs ...)."""
    from .._net import fsspec_supports

    schemes = {_scheme(it.path) for it in items if is_url(it.path)} - set(HTTP_SCHEMES)
    missing = sorted(s for s in schemes if not fsspec_supports(s))
    if missing:
        first = next(it for it in items if is_url(it.path) and _scheme(it.path) in missing)
        raise UsageError(f"manifest row {first.row + 1} ({first.path}): no reader for {', '.join(s + '://' for s in missing)}"
                         " URLs here; zoo score reads local files, http(s) URLs and the schemes fsspec can open "
                         "(pip install 'zoo[ray]' for fsspec, plus its backend, e.g. s3fs)")


def part_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


@dataclass(frozen=True)
class ClipReader:
    """A video of the manifest as the model's test clips (`zoo.data.VideoDataset`, test views of
    ``info``): no model, so it runs anywhere (a Ray task). URL videos are copied into ``staging``
    (`zoo._net`: http(s) with timeouts and bounded retries, other schemes through fsspec with a
    stall timeout), read, and deleted."""

    info: Any
    class_names: Tuple[str, ...]
    staging: Optional[str] = None

    def __call__(self, item: ManifestItem) -> Tuple[Optional[torch.Tensor], Optional[str]]:
        """``[views, 3, T, S, S]`` clips, or None and why the video could not be read."""
        with self.local(item) as (path, error):
            return (None, error) if path is None else self._read(path)

    @contextlib.contextmanager
    def local(self, item: ManifestItem, *, keep_http: bool = False) -> Iterator[Tuple[Optional[str], Optional[str]]]:
        """``(path, None)``: a local file of ``item`` while the block runs (a URL's staged copy,
        deleted after; ``keep_http``: http(s) URLs as they are, for FFmpeg to stream), or
        ``(None, why)`` when the copy failed."""
        if not is_url(item.path) or keep_http and _scheme(item.path) in HTTP_SCHEMES:
            yield item.path, None
            return
        from .._files import temp_path
        from .._net import NetworkError, copy_fsspec, download

        if self.staging is None:
            raise UsageError("a ClipReader given URLs needs a staging directory (staging=)")
        os.makedirs(self.staging, exist_ok=True)
        local = temp_path(os.path.join(self.staging, "video"), ext=os.path.splitext(item.path.split("?")[0])[1][:8])
        try:
            try:
                (download if _scheme(item.path) in HTTP_SCHEMES else copy_fsspec)(item.path, local)
            except NetworkError as e:
                yield None, f"cannot download: {e.detail}"
                return
            yield local, None
        finally:
            if os.path.exists(local):
                os.remove(local)

    def _read(self, path: str) -> Tuple[Optional[torch.Tensor], Optional[str]]:
        from ..data import Record, VideoDataset

        data = VideoDataset([Record(path=path, label=None)], list(self.class_names), self.info, train=False,
                            on_error="skip")[0]
        return data["video"], data.get("error")


@dataclass
class Scorer:
    """What each video goes through: ``model`` (eval mode, on ``device``) on what ``reader`` reads
    (its protocol and class names); ``topk`` labels per row; ``agg`` the view aggregation
    (predict); ``batch`` windows per forward pass and ``timeout`` for a URL stream (timeline)."""

    task: str
    model: Any
    reader: ClipReader
    topk: int = 5
    agg: str = "prob-mean"
    batch: int = 4
    timeout: float = 10.0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        if self.task not in TASKS:
            raise UsageError(f"--task {self.task!r}: choose one of {', '.join(TASKS)}")
        self.topk = min(self.topk, len(self.reader.class_names))

    @property
    def info(self):
        """The input protocol: the reader's."""
        return self.reader.info

    @property
    def reads_clips(self) -> bool:
        """Are videos read as clips first (`ClipReader`, separable from the model), or streamed by
        the model's own window loop (timeline)?"""
        return self.task != "timeline"

    def __call__(self, item: ManifestItem) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        """``item``'s rows, or no rows and why it could not be read."""
        if not self.reads_clips:  # a stream: read as it comes, URLs included (with ``timeout``)
            return self._timeline(item)
        return self.rows(item, *self.reader(item))

    def rows(self, item: ManifestItem, video: Optional[torch.Tensor], error: Optional[str] = None
             ) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        """``item``'s rows from its clips ``video`` (as `ClipReader` reads them), or ``error``."""
        if video is None:
            return [], error
        video = video.to(self.device)
        with torch.inference_mode():
            if self.task == "features":
                feats = self.model.forward_head(self.model.forward_features(video), pre_logits=True).float().cpu()
                return [self._row(item, features=feats.mean(0).tolist())], None
            logits = self.model(video).float().cpu()  # [views, classes]
        from .metrics import aggregate_views

        probs = aggregate_views(logits[None], self.agg)[0]
        if self.agg == "logit-mean":
            probs = probs.softmax(-1)
        return [self._row(item, **self._top(probs), logits=logits.mean(0).tolist())], None

    def _timeline(self, item: ManifestItem) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        from ..data import DecodeError, too_short
        from ..data.stream import FrameStream
        from ..inference.timeline import plan_windows, sliding_windows

        decoded = [0]
        with self.reader.local(item, keep_http=True) as (path, error):  # http(s): FFmpeg streams it
            if path is None:
                return [], error
            try:
                with FrameStream(path, timeout=self.timeout) as stream:
                    plan = plan_windows(self.info, stream.fps)
                    windows = list(sliding_windows(self.model, stream, plan, self.info, batch=self.batch,
                                                   on_frame=lambda i: decoded.__setitem__(0, i + 1)))
            except DecodeError as e:
                return [], e.reason
        if too_short(decoded[0]):
            return [], too_short(decoded[0])
        return [self._row(item, window_start=round(w.start, 6), window_end=round(w.end, 6), **self._top(w.probs),
                          probs=w.probs.float().tolist()) for w in windows], None

    def _top(self, probs: torch.Tensor) -> Dict[str, Any]:
        top = probs.float().topk(self.topk)
        names = self.reader.class_names
        return {"topk_labels": [names[c] for c in top.indices.tolist()], "topk_probs": top.values.tolist()}

    @staticmethod
    def _row(item: ManifestItem, **values) -> Dict[str, Any]:
        return {"id": item.id, "path": item.path, **values}

    def schema(self):
        """The Parquet schema of this task's rows (an empty shard has the same columns)."""
        pa = _pyarrow()
        floats = pa.list_(pa.float32())
        cols = [("id", pa.string()), ("path", pa.string())]
        if self.task == "features":
            return pa.schema(cols + [("features", floats)])
        cols += [("window_start", pa.float64()), ("window_end", pa.float64())] if self.task == "timeline" else []
        cols += [("topk_labels", pa.list_(pa.string())), ("topk_probs", floats)]
        return pa.schema(cols + [("probs" if self.task == "timeline" else "logits", floats)])


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker process builds the scoring model: ``spec`` (resolved), the fast path or not
    (``fast``), ``compile`` (`zoo.optimize`'s argument); seeded, so random weights are the same in
    every process (`zoo.engine.prepare`: as every predicting command prepares its model)."""

    spec: Any
    fast: bool = True
    compile: Any = False
    dtype: str = "fp32"  # or "bf16": the fast path under CPU bf16 autocast

    def build(self):
        from .prepare import build_checked, prepare_for_inference

        torch.manual_seed(0)
        return prepare_for_inference(build_checked(self.spec, strict_classifier=True), torch.device("cpu"),
                                     fast=self.fast, compile=self.compile, dtype=DTYPES[self.dtype])


ERROR_COLUMNS = ("id", "path", "error")


def _errors_schema():
    pa = _pyarrow()
    return pa.schema([(c, pa.string()) for c in ERROR_COLUMNS])


def write_table(path: str, rows: List[Dict[str, Any]], schema) -> None:
    """``rows`` as one Parquet file at ``path``, atomically."""
    pa = _pyarrow()
    table = pa.Table.from_pylist(rows, schema=schema)
    atomic_write(path, "wb", lambda f: pa.parquet.write_table(table, f))


def read_table(path: str):
    """A Parquet file this module wrote (a results shard, ``errors.parquet``), as a pyarrow Table."""
    return _pyarrow().parquet.read_table(path)


@dataclass(frozen=True)
class ShardPlan:
    """The manifest's videos cut into shards of ``size`` videos, in order."""

    items: Tuple[ManifestItem, ...]
    size: int

    def __post_init__(self):
        if self.size < 1:
            raise UsageError(f"--shard-size must be >= 1, got {self.size}")

    def __len__(self) -> int:
        return -(-len(self.items) // self.size)

    def shard(self, k: int) -> Tuple[ManifestItem, ...]:
        return self.items[k * self.size:(k + 1) * self.size]


def open_run(out: str, identity: Dict[str, Any]) -> List[int]:
    """Prepare ``out`` for the run ``identity`` (see the module docstring): a new directory gets its
    ``_run.json``; a directory of the same run keeps its shards (the temporary files of a killed run
    are removed); anything else is refused. Returns the shards already done."""
    from .._files import prepare_output_dir

    prepare_output_dir(out)
    run_file = os.path.join(out, RUN_FILE)
    if os.path.isfile(run_file):
        with open(run_file, encoding="utf-8") as f:
            before = json.load(f).get("identity")
        if before != identity:
            changed = sorted(k for k in set(identity) | set(before or {}) if (before or {}).get(k) != identity.get(k))
            raise UsageError(f"{display_name(out)} holds another scoring run (it differs in {', '.join(changed)}): "
                             "appending would mix two runs' rows; pass a new --out, or the same arguments to resume")
    else:
        if os.path.isdir(out) and os.listdir(out):
            raise UsageError(f"--out {display_name(out)} is not empty and holds no zoo score run ({RUN_FILE}): "
                             "pass a new or empty directory")
        atomic_write_text(run_file, json.dumps({"identity": identity, "complete": False}, indent=1) + "\n")
    for sub in (RESULTS_DIR, ERRORS_DIR, STAGING_DIR):  # the temporary files a killed run left there go too
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        prepare_output_dir(os.path.join(out, sub))
    results = os.path.join(out, RESULTS_DIR)
    return sorted(int(n[5:10]) for n in os.listdir(results) if n.startswith("part-") and n.endswith(".parquet"))


def shard_tables(items: Sequence[ManifestItem], results: Sequence[Tuple[List[Dict[str, Any]], Optional[str]]]
                 ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """A shard's rows and error rows from its ``items``' `Scorer` results, in manifest order."""
    rows, errors = [], []
    for item, (got, error) in zip(items, results, strict=True):
        rows += got
        if error is not None:
            errors.append({"id": item.id, "path": item.path, "error": error})
    return rows, errors


def write_shard(out: str, k: int, rows, errors, schema) -> None:
    """Shard ``k``'s errors, then its rows (the file whose presence marks the shard done)."""
    write_table(os.path.join(out, ERRORS_DIR, part_name(k)), errors, _errors_schema())
    write_table(os.path.join(out, RESULTS_DIR, part_name(k)), rows, schema)


def run_local(scorer: Scorer, plan: ShardPlan, out: str, identity: Dict[str, Any], *,
              on_shard: Optional[Callable[[int, int, int], None]] = None) -> Dict[str, Any]:
    """Score every shard of ``plan`` not yet in ``out``, in this process, one shard after another;
    then `finish`. ``on_shard(k, rows, errors)`` after each shard written."""
    done = set(open_run(out, identity))
    schema, start = scorer.schema(), time.perf_counter()
    for k in range(len(plan)):
        if k in done:
            continue
        rows, errors = shard_tables(plan.shard(k), [scorer(item) for item in plan.shard(k)])
        write_shard(out, k, rows, errors, schema)
        if on_shard is not None:
            on_shard(k, len(rows), len(errors))
    return finish(out, plan, extra={"resumed_shards": len(done), "engine": "local",
                                    "seconds": round(time.perf_counter() - start, 3)})


def finish(out: str, plan: ShardPlan, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Every shard done: ``errors.parquet`` (all shards' errors, in manifest order) and ``_run.json``
    with the counts and ``extra`` (the engine, and ``seconds``: how long this invocation took to
    score the shards it computed). Returns the run record."""
    import platform

    import zoo

    pa = _pyarrow()
    tables = [read_table(os.path.join(out, ERRORS_DIR, part_name(k))) for k in range(len(plan))]
    errors = pa.concat_tables(tables) if tables else _errors_schema().empty_table()
    atomic_write(os.path.join(out, ERRORS_FILE), "wb", lambda f: pa.parquet.write_table(errors, f))
    rows = sum(pa.parquet.ParquetFile(os.path.join(out, RESULTS_DIR, part_name(k))).metadata.num_rows
               for k in range(len(plan)))
    run_file = os.path.join(out, RUN_FILE)
    with open(run_file, encoding="utf-8") as f:
        record = json.load(f)
    record.update(complete=True, finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  counts={"videos": len(plan.items), "scored": len(plan.items) - errors.num_rows,
                          "errors": errors.num_rows, "rows": rows, "shards": len(plan)},
                  versions={"zoo": zoo.__version__, "torch": torch.__version__, "pyarrow": pa.__version__,
                            "python": platform.python_version()}, **(extra or {}))
    atomic_write_text(run_file, json.dumps(record, indent=1) + "\n")
    return record
