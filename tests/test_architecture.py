"""The shape of the package, checked from its source (docs/architecture.md draws it).

Walks every import in ``autocompress/`` and ``dashboards/`` (installed as
``autocompress_dashboards``; module level and inside
functions) and fails on:

- a private module (``_name``) imported from outside the package that owns it: packages
  talk through their ``__init__`` exports;
- an upward import: every unit sits in a layer (:data:`LAYERS`, lowest first) and imports
  only from its own layer or below;
- an import cycle between modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A unit is a sub-package or a top-level module of autocompress (or dashboards).
LAYERS: list[set[str]] = [
    {"errors", "registry", "files", "fields"},
    {"policy", "models"},
    {"graph"},
    {"backends"},
    {"techniques"},
    {"compress"},
    {"artifact"},
    {"runtime"},  # ONNX export of the deploy form, ONNX Runtime behind nn.Module
    {"cost"},
    {"tasks"},
    {"evaluate"},
    {"study"},  # the stored study: storage, liveness, budget, claims (no models)
    {"results", "report"},  # reading a study from its storage; HTML helpers
    {"search"},  # spaces, binding, trials, controller, workers, Ray backend
    {"apply", "study_figures", "study_report"},
    {"dashboards"},  # the Dash app (launched by `autocompress dashboard`)
    {"cli", "testing", "__init__"},  # the command line; the public facade (autocompress/__init__.py)
]


INSTALLED_AS = {"autocompress": "autocompress", "dashboards": "autocompress_dashboards"}  # folder -> package


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, package in INSTALLED_AS.items():
        for f in (ROOT / folder).rglob("*.py"):
            parts = (package, *f.relative_to(ROOT / folder).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """(imported name, line) for every absolute import of our packages in ``path``; for
    ``from a.b import c`` both ``a.b`` and ``a.b.c`` (c may be a module)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def _ours(name: str) -> bool:
    return name.split(".")[0] in INSTALLED_AS.values()


def _resolve(name: str) -> str | None:
    """The module ``name`` refers to (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "autocompress_dashboards":
        return "dashboards"
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(unit: str) -> int:
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"unit {unit!r} has no layer in tests/test_architecture.py LAYERS: add it")


def test_no_private_module_is_imported_from_another_package() -> None:
    bad = []
    for module, path in MODULES.items():
        for name, line in _imports(path):
            if not _ours(name):
                continue
            parts = name.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if module != owner and not module.startswith(owner + "."):
                        bad.append(f"{path.relative_to(ROOT)}:{line}: imports {'.'.join(parts[:i + 1])}")
                    break
    assert not bad, "private modules used from outside their package (export them):\n" + "\n".join(sorted(set(bad)))


def test_every_import_points_down_the_layers() -> None:
    bad = []
    for module, path in MODULES.items():
        mine = _layer(_unit(module))
        for name, line in _imports(path):
            target = _resolve(name) if _ours(name) else None
            if target is None or (target == "autocompress" and module.startswith("autocompress.")):
                continue  # `from autocompress import files` names the module, resolved separately
            theirs = _layer(_unit(target))
            if theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {_unit(module)} (layer {mine}) imports "
                           f"{target} ({_unit(target)}, layer {theirs})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles_between_modules() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for name, _ in _imports(path):
            target = _resolve(name) if _ours(name) else None
            # a package's __init__ importing its own modules (and those naming the package) is not a cycle
            if target and target != module and not module.startswith(target + "."):
                edges[module].add(target)
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_checks_can_fail() -> None:
    """The walkers see what they must: a known private import inside a package, a known edge."""
    names = {n for n, _ in _imports(MODULES["autocompress.search._loop"])}
    assert "autocompress.search._explore" in names  # a sibling's private module: allowed, but seen
    assert _layer(_unit("autocompress.study._claims")) < _layer(_unit("autocompress.search._loop"))
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


_ATTR_CALLS = {"set_user_attr", "set_system_attr", "set_trial_user_attr", "set_trial_system_attr"}


def _literal_keys(path: Path) -> Iterator[tuple[int, str]]:
    """String literals used as stored attribute keys: ``x.set_user_attr("k", ...)``,
    ``x.user_attrs.get("k")`` / ``x.user_attrs["k"]`` (and system attrs)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = node.args
            if node.func.attr in _ATTR_CALLS:
                key = args[1] if node.func.attr.startswith("set_trial") and len(args) > 1 else args[0] if args else None
            elif node.func.attr == "get" and isinstance(node.func.value, ast.Attribute) \
                    and node.func.value.attr in ("user_attrs", "system_attrs"):
                key = args[0] if args else None
            else:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield node.lineno, key.value
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr in ("user_attrs", "system_attrs") and isinstance(node.slice, ast.Constant):
            yield node.lineno, str(node.slice.value)


def test_stored_keys_are_spelt_only_in_the_records_module() -> None:
    """Every trial / study attribute key is a constant of ``autocompress.study.records``."""
    home = ROOT / "autocompress" / "study" / "records.py"
    bad = [f"{path.relative_to(ROOT)}:{line}: {key!r}" for module, path in MODULES.items() if path != home
           for line, key in _literal_keys(path)]
    assert not bad, "stored keys written as literals (use autocompress.study.records):\n" + "\n".join(bad)
    sample = ROOT / "tests" / "dash_studies.py"  # the walker finds literals where they are
    assert any(key == "objectives" for _, key in _literal_keys(sample))


def test_the_installed_packages_are_the_folders() -> None:
    """pyproject lists every package (so none is forgotten in a wheel), and installs the
    top-level dashboards/ folder as autocompress_dashboards, not as a generic `dashboards`."""
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads pyproject.toml")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert set(cfg["packages"]) == folders
    assert cfg["package-dir"] == {"autocompress_dashboards": "dashboards"}
    assert "dashboards" not in cfg["packages"]


def test_one_error_hierarchy() -> None:
    """Every exception class the package defines derives from AutocompressError."""
    bad = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & {"Exception", "ValueError", "RuntimeError", "TypeError", "KeyError"} \
                        and module != "autocompress.errors":
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name}{sorted(bases)}")
    assert not bad, "exceptions outside autocompress.errors' hierarchy:\n" + "\n".join(bad)


def test_latency_models_only_predict() -> None:
    """cost/latency/ predicts from plans and tables; timing real kernels is cost/profiling/'s job."""
    bad = [f"{path.relative_to(ROOT)}:{line}: imports {name}" for module, path in MODULES.items()
           if module.startswith("autocompress.cost.latency")
           for name, line in _imports(path) if name.startswith("autocompress.cost.profiling")]
    assert not bad, "\n".join(bad)
    timing = {n for n, _ in _imports(MODULES["autocompress.cost.profiling.profiler"])}
    assert any(n.startswith("autocompress.cost.profiling._timing") for n in timing)  # the walker sees imports


def test_docs_architecture_table_is_the_layers() -> None:
    """docs/architecture.md draws LAYERS: same units, same order."""
    import re

    rows = [line for line in (ROOT / "docs" / "architecture.md").read_text().splitlines()
            if re.match(r"\| \d+ \| ", line)]
    drawn = [{name.strip("/").removeprefix("autocompress/") for name in re.findall(r"`([^`]+)`", row.split("|")[2])}
             for row in rows]
    assert drawn == LAYERS
