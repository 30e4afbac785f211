"""``zoo cards``: (re)generate the model cards, or check that the committed ones are current."""
from __future__ import annotations

import os

from .._errors import InputNotFound

__all__ = ["register", "DEFAULT_RESULTS", "DEFAULT_DEPLOY"]

DEFAULT_RESULTS = os.path.join("benchmarks", "results", "compare.json")
DEFAULT_DEPLOY = os.path.join("benchmarks", "results", "deploy.json")


def cmd_cards(args) -> int:
    from ..benchmark.cards import stale_cards, write_cards

    results = args.results or DEFAULT_RESULTS
    if args.results and not os.path.isfile(args.results):
        raise InputNotFound(f"results file {args.results!r} does not exist")
    if not os.path.isfile(results):
        print(f"note: {results} does not exist; the cards say 'not measured yet'")
    deploy = args.deploy or DEFAULT_DEPLOY
    if args.deploy and not os.path.isfile(args.deploy):
        raise InputNotFound(f"results file {args.deploy!r} does not exist")
    readme = _readme(args)
    if args.check:
        problems = stale_cards(results, args.out, deploy, readme)
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s); run `zoo cards` to regenerate" if problems else f"{args.out}: up to date")
        return 1 if problems else 0
    for path in write_cards(results, args.out, deploy, readme):
        print(path)
    return 0


def _readme(args):
    """The page whose family table is regenerated: ``--readme FILE``; by default the README.md beside
    the cards' directory when it has the table's markers (the repository's front page); none with
    ``--readme none``."""
    from ..benchmark.cards import FAMILIES_START

    if args.readme == "none":
        return None
    if args.readme:
        if not os.path.isfile(args.readme):
            raise InputNotFound(f"--readme {args.readme!r} does not exist")
        return args.readme
    path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "README.md")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if FAMILIES_START in f.read():
                return path
    return None


def register(sub):
    p = sub.add_parser(
        "cards", help="generate the model cards (model_cards/) from model_info and zoo compare results",
        description="Write model_cards/<name>.md for every registered model, model_cards/README.md (all models "
                    "side by side) and the accuracy-vs-GFLOPs plot, from zoo.model_info and the zoo compare "
                    "results file. Models without results are marked 'not measured yet'.")
    p.add_argument("--results", help="zoo compare results JSON (default: benchmarks/results/compare.json; "
                                     "a missing default file means nothing is measured yet)")
    p.add_argument("--deploy", help="deployment benchmark results JSON (python -m zoo.benchmark.deploy) (default: benchmarks/results/deploy.json, "
                                    "if it exists)")
    p.add_argument("--out", default="model_cards", help="output directory (default: model_cards)")
    p.add_argument("--readme", metavar="FILE",
                   help="a page whose family table (between its markers) is regenerated too; default: the "
                        "README.md beside --out if it has the markers; 'none': no page")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing missing or stale cards (the PNG is only checked to exist)")
    p.set_defaults(func=cmd_cards)
