"""The packages' layering, read from their imports (ast, nothing is run).

``federation/`` is the protocol kernel: it imports no feature package and not
the shell (``coopfed``).  Between the top-level packages imports point one way:
no package reaches back to one that imports it.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coopfed", "admin", "clientapi", "inbox", "outbox", "actors", "federation")
# The floors of the house (README, "For developers"): a package imports only
# packages on lower floors; packages on one floor do not import each other.
FLOORS = (("coopfed",), ("admin", "clientapi", "inbox"), ("outbox",), ("actors",), ("federation",))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at top level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def package_imports() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = {p: {} for p in PACKAGES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in PACKAGES and top != package:
                    graph[package].setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return graph


def test_the_kernel_imports_no_feature_package() -> None:
    # Given every import of every module under federation/
    graph = package_imports()
    # Then none points at a feature package or at the shell
    assert graph["federation"] == {}


def test_no_import_cycle_between_top_level_packages() -> None:
    # Given the package-to-package import graph
    graph = package_imports()
    # When it is walked depth first from every package
    cycles: list[list[str]] = []

    def walk(package: str, path: list[str]) -> None:
        for target in graph[package]:
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            else:
                walk(target, [*path, target])

    for package in PACKAGES:
        walk(package, [package])
    # Then no package reaches back to itself
    detail = {
        " -> ".join(c): sorted(f for a, b in itertools.pairwise(c) for f in graph[a][b])
        for c in cycles
    }
    assert not cycles, detail


def test_the_shell_is_imported_by_no_package() -> None:
    graph = package_imports()
    assert [p for p in PACKAGES if "coopfed" in graph[p]] == []


def test_every_package_imports_only_lower_floors() -> None:
    # Given the floor of every package
    floor_of = {name: level for level, names in enumerate(FLOORS) for name in names}
    # When each package's imports are placed on their floors
    upward = {
        f"{package} -> {target}": sorted(files)
        for package, targets in package_imports().items()
        for target, files in targets.items()
        if floor_of[target] <= floor_of[package]
    }
    # Then every import points down
    assert upward == {}
