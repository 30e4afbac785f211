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
    if args.check:
        problems = stale_cards(results, args.out, deploy)
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s); run `zoo cards` to regenerate" if problems else f"{args.out}: up to date")
        return 1 if problems else 0
    for path in write_cards(results, args.out, deploy):
        print(path)
    return 0


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
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing missing or stale cards (the PNG is only checked to exist)")
    p.set_defaults(func=cmd_cards)
