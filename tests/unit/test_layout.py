"""The package layout of DESIGN.md: every import goes down the layers, and no modules import each other in a
circle (function-level imports included, since they form the same dependency)."""
from __future__ import annotations

import ast
from pathlib import Path

import stylex

ROOT = Path(stylex.__file__).parent

# Bottom to top; a package may import only packages of lower layers.
LAYERS: list[set[str]] = [
    {"errors"},
    {"data"},
    {"cache"},
    {"diffusion"},
    {"backbones"},
    {"regions", "matching", "metrics"},
    {"gallery"},
    {"methods"},
    {"callbacks"},
    {"checks"},
    {"pipeline", "cli"},
    {"studio_app"},  # the studio's page and logic: built on the run's code, imported only by stylex.studio
    {"run", "index", "evaluate", "bench", "studio", "__init__"},
    {"__main__"},  # python -m stylex = stylex.run
]
ENTRY_POINTS_AND_BASES = {"run", "index", "evaluate", "studio", "__main__", "__init__", "cli", "errors", "cache"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The stylex modules a file imports: `from a.b import c` counts as a.b.c when c is a module, else a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "stylex":
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(known)
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
    return found


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(pkg: str) -> int:
    return next(i for i, members in enumerate(LAYERS) if pkg in members)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def test_every_package_has_a_layer_and_the_root_holds_entry_points_and_bases():
    top = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
           if (p.is_file() and p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    for pkg in top:
        layer(pkg)  # StopIteration: a new package needs its place in LAYERS (and in DESIGN.md)
    loose = {p.stem for p in ROOT.glob("*.py")}
    assert loose <= ENTRY_POINTS_AND_BASES, f"modules at the package root that belong in a package: {loose - ENTRY_POINTS_AND_BASES}"


def test_imports_go_down_the_layers():
    wrong = sorted(f"{a} imports {b}" for a, targets in graph().items() for b in targets
                   if package(a) != package(b) and layer(package(b)) >= layer(package(a)))
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A path a -> ... -> a in the graph (depth-first), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_a_planted_circle(tmp_path):
    """The graph builder finds function-level imports, so a circle hidden in a function would be caught, and the
    search finds a planted circle (and none in a graph without one)."""
    (tmp_path / "m.py").write_text("def f():\n    from stylex.gallery import store\n")
    assert imports(tmp_path / "m.py", modules()) == {"stylex.gallery.store"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
