"""The package's import layers: models | data (and flops, _lazy, _errors, _files, _net) -> inference -> engine -> benchmark -> cli.

Every module's imports are read (ast, nothing imported): a module may import its own layer or
those below it, never one above; nothing outside ``zoo/models`` imports a private
``zoo.models._*`` module (the public names are re-exported by ``zoo.models``); the scripts in
``benchmarks/`` import public names only; and no two modules import each other, not even round a
loop or inside functions.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "zoo"
SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"
LAYERS = {"_lazy": 0, "_errors": 0, "_files": 0, "_net": 0, "models": 0, "data": 0, "flops": 0, "inference": 1, "engine": 2, "benchmark": 3, "cli": 4,
          "__main__": 4}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        yield path, [p for p in parts if p != "__init__"], package


def _imports(path, package):
    """(line, dotted module under zoo) of every zoo import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                if node.module:
                    yield node.lineno, ".".join(base + [node.module])
                else:
                    for a in node.names:
                        yield node.lineno, ".".join(base + [a.name])
            elif node.module and (node.module == "zoo" or node.module.startswith("zoo.")):
                yield node.lineno, node.module[4:]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("zoo."):
                    yield node.lineno, a.name[4:]


def _layer(dotted):
    return LAYERS.get(dotted.split(".")[0]) if dotted else None


def test_every_module_has_a_layer():
    unplaced = [str(p.relative_to(PKG)) for p, parts, _ in _modules() if parts and _layer(".".join(parts)) is None]
    assert unplaced == [], f"modules outside the layers {sorted(LAYERS)}: {unplaced}"


def violations():
    bad = []
    for path, parts, package in _modules():
        own = _layer(".".join(parts))
        for line, target in _imports(path, package):
            where = f"zoo/{path.relative_to(PKG)}:{line}"
            layer = _layer(target)
            if own is not None and layer is not None and layer > own:
                bad.append(f"{where} imports zoo.{target} (a layer above)")
            if target.startswith("models._") and parts[:1] != ["models"]:
                bad.append(f"{where} imports private zoo.{target}")
    for path in sorted(SCRIPTS.glob("*.py")):  # the benchmark scripts sit above every layer: public names only
        for line, target in _imports(path, []):
            if any(piece.startswith("_") for piece in target.split(".")):
                bad.append(f"benchmarks/{path.name}:{line} imports private zoo.{target}")
    return bad


def import_graph():
    """``{module: modules it imports}`` over the package, imports inside functions included."""
    modules = {".".join(parts): (path, package) for path, parts, package in _modules()}
    graph = {}
    for name, (path, package) in modules.items():
        targets = set()
        for _, target in _imports(path, package):
            while target and target not in modules:  # `from .x import name`: the module x
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    """No two modules import each other, directly or round a loop, not even inside functions."""
    assert cycles(import_graph()) == []


def test_no_upward_or_private_imports():
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The reader finds every kind of violation and a loop (a check that could not fail would prove
    nothing)."""
    fake = tmp_path / "zoo"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "__init__.py").write_text("from ..engine import train\n")
    (fake / "cli.py").write_text("from .models._registry import get_entry\nimport zoo.benchmark.cards\n")
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    (scripts / "bench.py").write_text("def main():\n    from zoo.models._info import IMAGENET_MEAN\n")
    (fake / "models" / "a.py").write_text("def f():\n    from .b import g\n")  # a loop through a function
    (fake / "models" / "b.py").write_text("from . import a\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    monkeypatch.setattr(__import__(__name__), "SCRIPTS", scripts)
    found = violations()
    assert any("models/__init__.py:1 imports zoo.engine" in v for v in found)
    assert any("cli.py:1 imports private zoo.models._registry" in v for v in found)
    assert any("benchmarks/bench.py:2 imports private zoo.models._info" in v for v in found)
    assert len(found) == 3
    assert cycles(import_graph()) == [["models.a", "models.b"]]


@pytest.mark.parametrize("layer", ["inference", "benchmark", "engine", "cli", "models", "data"])
def test_layer_packages_exist(layer):
    assert (PKG / layer / "__init__.py").is_file()


_PROBE = ("import sys\nfrom zoo.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "print(' '.join(m for m in ('torch', 'torchvision', 'timm', 'fvcore', 'av', 'matplotlib') "
          "if m in sys.modules), file=sys.stderr)")


@pytest.mark.parametrize("argv, allowed", [(["--help"], set()), (["eval", "--help"], set()),
                                           (["train", "--help"], set()), (["compare", "--help"], set()),
                                           (["list"], {"torch"}), (["info", "tsm_r50"], {"torch"})])
def test_cli_start_up_imports(argv, allowed):
    """`zoo --help` and `zoo COMMAND --help` import no torch; `zoo list`/`zoo info` no torchvision,
    timm, fvcore, av or matplotlib (the time it saves is measured by benchmarks/startup.py)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120)
    imported = set(proc.stderr.strip().splitlines()[-1].split()) if proc.stderr.strip() else set()
    assert imported <= allowed, f"zoo {' '.join(argv)} imported {sorted(imported - allowed)}"


def test_package_attributes_load_on_first_use():
    import subprocess
    import sys

    code = ("import sys, zoo; assert 'torch' not in sys.modules; "
            "print(len(zoo.models.model_weights('tsm_r50')), zoo.inference.optimize is zoo.optimize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["11", "True"], out.stderr
