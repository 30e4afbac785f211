"""The Ray engine of ``zoo score`` (``--engine ray``; ``pip install 'zoo[ray]'``): the same shards,
rows and files as the local engine (`zoo.engine.score`), computed on a Ray cluster.

The shards not yet written become a Ray dataset of their videos (one row per video: shard, manifest
row, id, path). Reading runs in Ray CPU tasks: each video decoded and sampled by zoo's own
`ClipReader` (only the frames of the model's test views; timelines stream inside the model's
workers instead, their windows read as they come), at most `READS_PER_ACTOR` per actor at a
time, reserving no CPU (reading is a small part of a video's time: a whole reserved core would be
taken from the models). The model runs in an actor pool (``map_batches``
with a callable class): ``workers`` actors of ``threads`` CPUs, each holding one model built by the
`ModelRecipe` (zoo's fast path). The dataset keeps manifest order, so the driver receives a
shard's videos together and writes the shard (errors, then rows) atomically as soon as its last
video is in: a killed run resumes shard by shard, exactly as the local engine does, and the tables
equal the local engine's row for row when both run their models with the same thread count.

``address``: an existing cluster (``ray://host:10001`` or ``auto``); without it a local Ray
instance starts for the run and stops after it. Workers on other machines read the videos and the
weights by the paths the driver gives: put them on storage every node mounts (or use http(s) URLs
and released weights, which every worker fetches itself).
"""
from __future__ import annotations

import pickle
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from .._errors import MissingDependency, UsageError
from ..data.manifest import ManifestItem
from .score import ClipReader, ModelRecipe, Scorer, ShardPlan, finish, open_run, shard_tables, write_shard

__all__ = ["run_ray", "require_ray"]


def require_ray():
    """The ``ray`` module with Ray Data, or a one-line `MissingDependency`."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependency("--engine ray needs Ray Data: pip install 'zoo[ray]'") from None
    return ray


def _item(row: Dict[str, Any]) -> ManifestItem:
    return ManifestItem(str(row["id"]), str(row["path"]), int(row["row"]))


class _Read:
    """Ray task body: a video's clips (or why it cannot be read), pickled with the row."""

    def __init__(self, reader: ClipReader):
        self.reader = reader

    def __call__(self, row: Dict[str, Any]) -> Dict[str, Any]:
        video, error = self.reader(_item(row))
        return {**row, "clips": pickle.dumps((None if video is None else video.numpy(), error))}


class _Score:
    """Ray actor: one model (built once, `ModelRecipe`) scoring each video of a batch on its own, as
    the local engine does; a video's result is ``pickle((rows, error))``."""

    def __init__(self, recipe: ModelRecipe, reader: ClipReader, settings: Dict[str, Any], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.scorer = Scorer(model=recipe.build(), reader=reader, **settings)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]:
        import torch

        results = []
        for i in range(len(batch["row"])):
            item = _item({k: batch[k][i] for k in ("id", "path", "row")})
            if self.scorer.reads_clips:
                video, error = pickle.loads(batch["clips"][i])
                got = self.scorer.rows(item, None if video is None else torch.from_numpy(video), error)
            else:
                got = self.scorer(item)
            results.append(pickle.dumps(got))
        return {"shard": batch["shard"], "row": batch["row"], "result": np.array(results, dtype=object)}


def run_ray(recipe: ModelRecipe, reader: ClipReader, settings: Dict[str, Any], plan: ShardPlan, out: str,
            identity: Dict[str, Any], *, workers: int = 1, threads: int = 1, address: Optional[str] = None,
            on_shard: Optional[Callable[[int, int, int], None]] = None) -> Dict[str, Any]:
    """Score the shards of ``plan`` not yet in ``out`` on Ray (see the module docstring); then
    `finish`. ``settings``: the `Scorer`'s options but its model and reader."""
    if workers < 1 or threads < 1:
        raise UsageError(f"--workers and --threads must be >= 1, got {workers} and {threads}")
    ray = require_ray()
    done, start = set(open_run(out, identity)), time.perf_counter()
    todo = [k for k in range(len(plan)) if k not in done]
    if todo:
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            _run(ray, recipe, reader, settings, plan, out, todo, workers, threads, on_shard)
        finally:
            if started:
                ray.shutdown()
    return finish(out, plan, extra={"resumed_shards": len(done), "engine": f"ray, {workers} worker(s) x {threads} thread(s)",
                                    "seconds": round(time.perf_counter() - start, 3)})  # Ray's start included


READS_PER_ACTOR = 2  # reading tasks in flight per model actor: enough to keep it fed


def _check_cpus(ray, workers: int, threads: int) -> None:
    """The actors' CPUs must fit the cluster (the reading tasks reserve none: reading is a small part
    of a video's time, ``benchmarks/results/score.json``, and a reservation would keep a whole core
    from the models): refused in one line before any work."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if workers * threads > cpus:
        raise UsageError(f"--workers {workers} x --threads {threads} needs {workers * threads} CPU(s) for the models; "
                         f"the Ray cluster has {cpus}: use fewer workers or threads (or a larger cluster, --address)")


def _run(ray, recipe, reader, settings, plan, out, todo, workers, threads, on_shard) -> None:
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and timing lines; zoo prints a line per shard
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # a shard's videos arrive together, in manifest order
    ctx.enable_progress_bars = False
    rows = [{"shard": k, "row": it.row, "id": it.id, "path": it.path} for k in todo for it in plan.shard(k)]
    ds = ray.data.from_items(rows)
    local = Scorer(model=None, reader=reader, **settings)  # what the workers' scorers do, without a model
    _check_cpus(ray, workers, threads)
    if local.reads_clips:  # tasks spread over the nodes (and, being scheduled apart, not fused into the actors)
        ds = ds.map(_Read(reader), num_cpus=0, compute=ray.data.TaskPoolStrategy(size=READS_PER_ACTOR * workers),
                    scheduling_strategy="SPREAD")
    ds = ds.map_batches(_Score, fn_constructor_kwargs=dict(recipe=recipe, reader=reader, settings=settings,
                                                           threads=threads),
                        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads, batch_size=1,
                        batch_format="numpy", scheduling_strategy="DEFAULT")
    schema = local.schema()
    pending: Dict[int, Dict[int, Any]] = {}
    for r in ds.iter_rows():
        k = int(r["shard"])
        pending.setdefault(k, {})[int(r["row"])] = pickle.loads(r["result"])
        if len(pending[k]) == len(plan.shard(k)):
            results = pending.pop(k)
            got, errors = shard_tables(plan.shard(k), [results[item.row] for item in plan.shard(k)])
            write_shard(out, k, got, errors, schema)
            if on_shard is not None:
                on_shard(k, len(got), len(errors))
    if pending:
        raise RuntimeError(f"Ray returned part of shard(s) {sorted(pending)}: a bug in zoo's Ray engine")
