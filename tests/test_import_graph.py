"""The import graph of ``src/taxopost``: no cycle, and no import that runs up the layers.

Every ``import`` in a module counts, at module level or inside a function: an import moved into
a function to dodge a cycle is still a cycle here. Imports under ``if TYPE_CHECKING:`` never
run, so they cannot make a cycle, but they must still respect the layers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "taxopost"

#: Lowest first. A module may import its own layer and the ones below it, never one above.
#: Within a layer, the packages listed together may import each other only where a rule below
#: allows it (none does today).
LAYERS: list[tuple[str, ...]] = [
    ("taxopost.errors", "taxopost.lazy"),
    ("taxopost.core",),
    ("taxopost.io",),
    ("taxopost.tasks",),  # task specs: pydantic configs and offline steps, no Django
    ("taxopost.evaluation",),
    (
        "taxopost.settings",
        "taxopost.dbbackends",
        "taxopost.dbutils",
        "taxopost.django_setup",
        "taxopost.celery",
        "taxopost.security",
        "taxopost.query_checks",
    ),
    ("taxopost.taxa",),
    ("taxopost.ml",),
    ("taxopost.observations",),
    ("taxopost.access",),  # who may do what on which project: roles, tokens, login limits
    # The admins of the data: their lists, pages and forms follow the roles of taxopost.access.
    ("taxopost.taxa.admin", "taxopost.ml.admin", "taxopost.observations.admin"),
    ("taxopost.jobs",),  # what a job is: its record, plan store, progress, metrics
    ("taxopost.postprocessing",),  # the task framework and the platform adapters
    # What runs a job (lifecycle, executors, operations, web entry points) and the admin it offers.
    ("taxopost.postprocessing.running", "taxopost.postprocessing.admin"),
    ("taxopost.api", "taxopost.review", "taxopost.demo", "taxopost.urls", "taxopost.wsgi", "taxopost.web_server"),
    ("taxopost.cli",),
]
#: Packages that never import Django, whatever they import of each other.
DJANGO_FREE = ("taxopost.errors", "taxopost.core", "taxopost.io", "taxopost.tasks", "taxopost.evaluation")


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    runs: bool  # False under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runs)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, node.lineno, runs))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append(Import(name, submodule if submodule in known else base, node.lineno, runs))
        for child in ast.iter_child_nodes(node):
            visit(child, runs)

    visit(tree, True)
    return [item for item in found if item.target.startswith(("taxopost", "django", "rest_framework"))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def layer_of(module: str) -> int:
    """The layer of the longest prefix that names the module's package."""
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    found = modules()
    known = set(found)
    return [item for name, path in sorted(found.items()) for item in imports_of(name, path, known)]


def test_every_module_belongs_to_a_layer():
    unplaced = [name for name in modules() if name != "taxopost" and layer_of(name) < 0]
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_no_import_runs_up_the_layers(graph):
    upward = [
        f"{item.source}:{item.line} imports {item.target} "
        f"({LAYERS[layer_of(item.source)][0]} is below {LAYERS[layer_of(item.target)][0]})"
        for item in graph
        if item.target.startswith("taxopost.") and layer_of(item.target) > layer_of(item.source)
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_the_django_free_layers_never_import_django(graph):
    found = [
        f"{item.source}:{item.line} imports {item.target}"
        for item in graph
        if item.source.startswith(DJANGO_FREE) and item.target.startswith(("django", "rest_framework"))
    ]
    assert not found, "\n".join(found)


def test_nothing_imports_another_package_private_names(graph):
    """``core._validation`` is the core's own; ``io._text`` the readers'."""
    found = []
    for item in graph:
        private = [part for part in item.target.split(".") if part.startswith("_") and part != "__init__"]
        if private:
            owner = item.target.split("." + private[0])[0]
            if not (item.source == owner or item.source.startswith(owner + ".")):
                found.append(f"{item.source}:{item.line} imports {item.target}")
    assert not found, "\n".join(found)


def test_there_is_no_import_cycle(graph):
    edges: dict[str, set[str]] = {}
    for item in graph:
        if item.runs and item.target.startswith("taxopost") and item.target != item.source:
            edges.setdefault(item.source, set()).add(item.target)
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None
