"""mkdocs hooks: pages generated at build time from the repository, never written into ``docs/``.

- ``models/<name>.md`` (and ``models/index.md``, its plot): the model cards, as ``zoo cards``
  wrote them into ``model_cards/``;
- ``families/<family>.md``: each family's summary and its models side by side (`zoo.benchmark.cards.family_pages`);
- ``results.md``: every ``benchmarks/results/*.json`` rendered as tables (`zoo.benchmark.render`).
"""
from __future__ import annotations

import os

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def on_files(files, config):
    from zoo.benchmark.render import render_results

    cards = os.path.join(ROOT, "model_cards")
    for name in sorted(os.listdir(cards)):
        path = os.path.join(cards, name)
        target = f"models/{name}"
        if name.endswith(".md"):
            text = open(path, encoding="utf-8").read()
            if name == "README.md":  # the ten-column table takes the whole width
                text = "---\nhide:\n  - navigation\n  - toc\n---\n" + text
            files.append(File.generated(config, target, content=text))
        elif name.endswith(".png"):
            files.append(File.generated(config, target, abs_src_path=path))
    from zoo.benchmark.cards import family_pages
    from zoo.benchmark.results import load_results

    results, deploy = (load_results(os.path.join(ROOT, "benchmarks", "results", f)) for f in ("compare.json", "deploy.json"))
    pages = family_pages(results, "../models", deploy)
    for family, text in pages.items():
        files.append(File.generated(config, f"families/{family}.md", content=text))
    index = "# Families\n\n" + "".join(f"- [{family}]({family}.md)\n" for family in pages)
    files.append(File.generated(config, "families/README.md", content=index))
    files.append(File.generated(config, "results.md", content=render_results(os.path.join(ROOT, "benchmarks", "results"))))
    return files
