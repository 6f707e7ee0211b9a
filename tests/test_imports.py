"""Structure checks on the ``qsnn_hw`` sources (static, nothing is imported or run).

* No import cycles inside ``qsnn_hw``: the graph has an edge ``A -> B`` for every
  ``import``/``from`` statement anywhere in module ``A`` (module level, inside functions,
  under ``if TYPE_CHECKING``) that names ``B``, and for every
  ``importlib.import_module("B")`` (an f-string ``f"P.{x}"`` stands for every module
  under ``P``). Relative imports are resolved; in
  ``from P import name``, ``name`` counts as the module ``P.name`` when that module exists;
  importing a package imports its ``__init__``, and so do the packages around the target
  that do not also contain ``A`` (Python runs their ``__init__`` first).
* The tests and the package read no files outside the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "qsnn_hw"


def package_modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``package`` (a package's
    name stands for its ``__init__.py``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(importer: str, is_package: bool, module: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]              # a module's own package
    if level > 1:
        base = base[:-(level - 1)]
    return ".".join(base + ([module] if module else []))


def _dynamic_targets(arg: ast.expr, modules: dict[str, Path]) -> set[str]:
    """``importlib.import_module("a.b")``: that module; ``import_module(f"a.b.{x}")``:
    every module under ``a.b``; anything else cannot be resolved statically."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return {arg.value}
    if (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
            and str(arg.values[0].value).endswith(".")):
        prefix = arg.values[0].value
        return {m for m in modules if m.startswith(prefix)}
    return set()


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` imports (see the module docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.module, node.level)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"):
            targets.update(_dynamic_targets(node.args[0], modules))
    own = set(_ancestors(name)) | {name}
    edges = set()
    for target in targets:
        for mod in [*_ancestors(target), target]:
            if mod in modules and mod not in own:
                edges.add(mod)
    return edges


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = package_modules(root, package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) through the first member of every strongly
    connected component that has a cycle."""
    return [_shortest_cycle(graph, comp) for comp in cyclic_components(graph)]


def cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (Tarjan's algorithm, iterative),
    each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        comp.append(member)
                        if member == node:
                            break
                    if len(comp) > 1 or node in graph.get(node, ()):
                        components.append(sorted(comp))
    return sorted(components)


def _shortest_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """Breadth-first search from ``comp[0]`` back to itself, inside the component."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if child not in prev:
                    prev[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def test_cycle_finder_on_a_toy_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_resolves_relative_submodule_and_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text("from ..a import f\nimport pkg.c\n")
    (pkg / "c.py").write_text("from pkg import a\n")
    (pkg / "d.py").write_text("import importlib\n"
                              "def load(n):\n"
                              "    return importlib.import_module(f'pkg.sub.{n}')\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub", "pkg.sub.b"}, "pkg.sub": {"pkg.sub.b"},
                     "pkg.sub.b": {"pkg.a", "pkg.c"}, "pkg.c": {"pkg.a"},
                     "pkg.d": {"pkg.sub", "pkg.sub.b"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def cycle_report(graph: dict[str, set[str]]) -> str:
    """Per cyclic component: a shortest cycle, then every import edge inside it."""
    lines = []
    for comp in cyclic_components(graph):
        lines.append(" -> ".join(_shortest_cycle(graph, comp)))
        members = set(comp)
        lines += [f"    {a} -> {b}" for a in comp for b in sorted(graph[a]) if b in members]
    return "\n".join(lines)


def test_no_import_cycles():
    graph = import_graph()
    if cyclic_components(graph):
        pytest.fail(f"import cycles in {PACKAGE} (a cycle, then the edges of its component):\n"
                    f"{cycle_report(graph)}", pytrace=False)


# Path construction that reaches a folder beside the checkout (a clone has none).
_OUTSIDE = re.compile(r"""shared/|["']shared["']""")


def _grep(pattern: re.Pattern, folders) -> list[str]:
    """``file:line: text`` of every line of the Python files under ``folders`` (this file
    excluded) that ``pattern`` finds."""
    hits = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    return hits


def test_sources_read_nothing_outside_the_repository():
    offenders = _grep(_OUTSIDE, (PACKAGE, "tests"))
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_no_reads_of_internal_hierarchy_names():
    """Verification observes cores only through documented ports (the trace interface):
    no private Amaranth or component-internal names in the package, sim/ or the tests."""
    private = re.compile(r"w_port__data|\bwr__(en|addr|data)\b|\.memory\.data\b")
    hits = _grep(private, ("qsnn_hw", "sim", "tests", "bench"))
    assert not hits, "internal hierarchy names:\n" + "\n".join(hits)
