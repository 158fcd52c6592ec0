"""The package reads bottom-up: no import runs from a lower layer to a higher one, and there are no import cycles.

Every ``import`` statement of ``src/facelab`` is read with :mod:`ast`, also those inside
functions (a lazy import is still a dependency).  Run ``python tests/test_layers.py`` to
print the imports that break a rule.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: layer of each top-level part of the package, bottom-up (CONTRIBUTING.md, "Layers").
#: A part may import its own layer and those below; never one above.
LAYERS: dict[str, int] = {
    # 0 foundations: results, errors, registries, a progress bar
    "types": 0, "errors": 0, "registry": 0, "progress": 0,
    # 1 input: loading images, paths, URLs; running a job over many sources (needs only io)
    "io": 1, "runner": 1,
    # 2 model files and drawing
    "models": 2, "_dlibdnn": 2, "draw": 2,
    # 3 stages
    "detect": 3, "landmarks": 3, "align": 3, "embed": 3, "attributes": 3,
    # 4 the pipeline and the public API (facelab/__init__.py is "facelab")
    "pipeline": 4, "api": 4, "facelab": 4,
    # 5 what is built on the pipeline
    "gallery": 5, "train": 5, "evaluate": 5, "batch": 5, "datasets": 5, "compat": 5,
    # 6 services
    "serve": 6, "video": 6,
    # 7 the command line
    "cli": 7,
}  # fmt: skip


def _modules() -> dict[str, Path]:
    mods = {}
    for p in (SRC / "facelab").rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(importer, imported facelab module, line) for every import statement."""
    edges = []
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]
            else:
                continue
            for t in targets:
                if t == "facelab" or t.startswith("facelab."):
                    while t not in mods and "." in t:
                        t = t.rsplit(".", 1)[0]
                    edges.append((mod, t, node.lineno))
    return edges


def _part(mod: str) -> str:
    return mod.split(".")[1] if "." in mod else "facelab"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


EDGES = sorted(set(_imports(_modules())))


def upward_imports() -> list[str]:
    return [
        f"{a} (layer {LAYERS[_part(a)]}) imports {b} (layer {LAYERS[_part(b)]}) at line {line}"
        for a, b, line in EDGES
        if LAYERS[_part(a)] < LAYERS[_part(b)]
    ]


def module_cycles() -> list[list[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in EDGES:
        if a != b:
            g[a].add(b)
    return _cycles(g)


def package_cycles() -> list[list[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in EDGES:
        if _part(a) != _part(b):
            g[_part(a)].add(_part(b))
    return _cycles(g)


def test_every_part_has_a_layer():
    assert EDGES, "no imports read: wrong source folder?"
    unknown = sorted({_part(m) for m in _modules()} - set(LAYERS))
    assert not unknown, f"give these parts of facelab a layer in LAYERS: {unknown}"


def test_no_import_runs_up_the_layers():
    assert upward_imports() == []


def test_no_import_cycles():
    assert module_cycles() == []
    assert package_cycles() == []


def test_nothing_outside_the_cli_imports_it():
    assert [f"{a}:{line}" for a, b, line in EDGES if _part(b) == "cli" and _part(a) != "cli"] == []


if __name__ == "__main__":
    for line in upward_imports():
        print("up:", line)
    for c in module_cycles() + package_cycles():
        print("cycle:", " <-> ".join(c))
