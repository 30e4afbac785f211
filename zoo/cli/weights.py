"""``zoo weights [PATTERN]`` (the released weights) and ``zoo weights fetch NAME [--from FILE]``."""
from __future__ import annotations

import os

from . import UsageError

__all__ = ["register", "weights_table"]


def _top1(w) -> str:
    if not w.results:
        return "-"
    r = w.results[0]
    return f"{r.top1:g} ({r.views})"


def _size(w) -> str:
    from ..models import weights_dir

    paths = [weights_dir() / n for n in w.file_names]
    if not paths or not all(p.is_file() for p in paths):
        return "-"
    return f"{sum(p.stat().st_size for p in paths) / 2**20:.0f} MB"


def weights_table(pattern: str = "*") -> str:
    """One row per released checkpoint: name, source, classes, published top-1 with its views,
    cached size, published hash, whether the files are cached."""
    from ..models import list_weights, weights_info
    from ..models import cached_files

    rows = [("weights", "source", "classes", "published top-1 (views)", "size", "sha256", "cached")]
    for name in list_weights(pattern):
        w = weights_info(name)
        hashes = [h for h in w.hashes if h]
        where = "by hand" if w.files and not w.urls else ("no file" if not w.files else "url")
        rows.append((name, w.source or "-", f"{w.num_classes} {w.dataset}", _top1(w), _size(w),
                     ",".join(hashes) or "-", "yes" if cached_files(w) else where))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def cmd_weights(args) -> int:
    from ..models import list_weights

    if args.what and args.what[0] == "fetch":
        return _fetch(args)
    if args.sources:
        raise UsageError("--from goes with `zoo weights fetch NAME --from FILE`")
    if len(args.what) > 1:
        raise UsageError(f"give one PATTERN (or `fetch NAME`), got {' '.join(args.what)}")
    pattern = args.what[0] if args.what else "*"
    if not list_weights(pattern):
        raise UsageError(f"no released weights match {pattern!r} (e.g. 'tsm*', '*.kinetics400')")
    print(weights_table(pattern))
    print("\nfetch one: zoo weights fetch MODEL.TAG (or --from FILE for files fetched by hand); "
          "use it: zoo.build(MODEL, weights=TAG), zoo predict MODEL VIDEO --pretrained TAG")
    return 0


def _fetch(args) -> int:
    from ..models import weights_info
    from ..models import fetch_files, import_files, weights_dir

    if len(args.what) != 2:
        raise UsageError("usage: zoo weights fetch MODEL.TAG [--from FILE ...]")
    record = weights_info(args.what[1])
    if args.sources:
        paths = import_files(record, args.sources)
        done = [str(p) for p in paths]
    else:
        done = [str(p) for p, _ in fetch_files(record, progress=not args.no_progress)]
    for p in done:
        print(f"{record.name}: {p} ({os.path.getsize(p) / 2**20:.1f} MB, checked)")
    missing = [n for n in record.file_names if not (weights_dir() / n).is_file()]
    if missing:
        print(f"still missing for {record.name}: {', '.join(missing)} (fetch them with --from too)")
    return 0


def register(sub):
    p = sub.add_parser(
        "weights", help="list released weights (PATTERN), or fetch one: zoo weights fetch MODEL.TAG [--from FILE]",
        description="List the released checkpoints zoo loads by name (model.tag), with their source, classes, "
                    "published top-1 and the test views it was measured with, published sha256 and whether "
                    "they are cached; or fetch one into $ZOO_CACHE_DIR/weights (checked against its hash; "
                    "ZOO_WEIGHTS_MIRROR, a directory or URL prefix, is tried first). Releases on Google Drive, "
                    "Baidu or Weiyun are fetched by hand, then imported with --from.")
    p.add_argument("what", nargs="*", metavar="PATTERN | fetch MODEL.TAG",
                   help="an fnmatch pattern (default: all), or `fetch MODEL.TAG`")
    p.add_argument("--from", dest="sources", action="append", metavar="FILE",
                   help="with fetch: a release file fetched by hand (repeat for file sets)")
    p.add_argument("--no-progress", action="store_true", help="with fetch: no download progress bar")
    p.set_defaults(func=cmd_weights)
