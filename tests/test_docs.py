"""The documentation: the site builds with --strict (and a broken link fails it), every public
name is in the API reference, every code block marked runnable runs, the README is a front door."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import zoo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNABLE = "<!-- runnable -->"
PAGES = ["README.md", *sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(REPO, "docs")) if n.endswith(".md"))]


def _blocks():
    """(page, line, language, code) of every fenced block right after a RUNNABLE marker."""
    found = []
    for page in PAGES:
        lines = open(os.path.join(REPO, page), encoding="utf-8").read().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == RUNNABLE:
                fence = re.match(r"```(\w+)$", lines[i + 1].strip())
                assert fence, f"{page}:{i + 1}: {RUNNABLE} must be followed by a fenced block"
                end = lines.index("```", i + 2)
                found.append(pytest.param(page, i + 2, fence.group(1), "\n".join(lines[i + 2:end]),
                                          id=f"{page}:{i + 2}"))
    return found


def _env():
    bin_dir = os.path.dirname(sys.executable)  # the venv's, where `zoo` is
    return {**os.environ, "OMP_NUM_THREADS": "1", "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize("page, line, language, code", _blocks())
def test_runnable_blocks_run(page, line, language, code, tmp_path):
    """Each block marked runnable runs as written, in an empty directory (no network, tiny inputs)."""
    cmd = {"python": [sys.executable, "-c", code], "sh": ["bash", "-euo", "pipefail", "-c", code]}[language]
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{page}:{line} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def test_the_quickstarts_are_marked_runnable():
    pages = {p.values[0] for p in _blocks()}
    assert {"README.md", os.path.join("docs", "index.md")} <= pages


@pytest.fixture(scope="module")
def mkdocs():
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")


def _build(config, site):
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", site],
                          cwd=REPO, env={**_env(), "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                          timeout=600)


def test_the_site_builds_strictly_with_generated_pages(mkdocs, tmp_path):
    r = _build(os.path.join(REPO, "mkdocs.yml"), str(tmp_path / "site"))
    assert r.returncode == 0, r.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/index.html", "results/index.html", "models/index.html",
                 "models/tsm_r50/index.html", "scale-out/index.html", "families/index.html", "families/tsm/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text()
    assert "zoo.models.build" in api and "zoo.inference.api.optimize" in api and "calibration" in api
    results = (site / "results" / "index.html").read_text()
    assert "speed.json" in results and "deploy.json" in results and "<table>" in results
    assert (site / "models" / "accuracy_vs_gflops.png").is_file()


def test_a_broken_link_fails_the_build(mkdocs, tmp_path):
    """--strict is what makes the build a check: a page linking to a missing one fails it."""
    docs = tmp_path / "docs"
    shutil.copytree(os.path.join(REPO, "docs"), docs)
    (docs / "data.md").write_text((docs / "data.md").read_text() + "\n[gone](no-such-page.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(open(os.path.join(REPO, "mkdocs.yml")).read().replace("docs_dir: docs", f"docs_dir: {docs}")
                      .replace("  - docs/hooks.py", f"  - {os.path.join(REPO, 'docs', 'hooks.py')}"))
    r = _build(str(config), str(tmp_path / "site"))
    assert r.returncode != 0 and "no-such-page.md" in r.stderr


def test_every_public_name_is_in_the_api_reference():
    documented = {line.split()[-1].rsplit(".", 1)[-1] for line in open(os.path.join(REPO, "docs", "api.md"))
                  if line.startswith("::: ")}
    missing = sorted(set(zoo.__all__) - {"__version__"} - documented)
    assert not missing, f"public names missing from docs/api.md: {missing}"


def test_the_readme_is_a_front_door():
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert os.path.exists(os.path.join(REPO, target)), f"README links to a missing {target}"
