"""No import cycle between the project's modules (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "storage", "adapters")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class Imports(ast.NodeVisitor):
    """The modules a file imports anywhere in its body, except under ``if TYPE_CHECKING:``
    (annotations only, never run)."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:  # ``from x import y`` may name the submodule x.y
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                self.found.add(sub if sub in self.known else node.module)


def imports(path: Path, known: set[str]) -> set[str]:
    visitor = Imports(known)
    visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
    return visitor.found & known


def graph() -> dict[str, set[str]]:
    files = [f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")]
    known = {module_name(f) for f in files}
    edges = {module_name(f): imports(f, known) for f in files}
    # A package's __init__ importing its own submodules is how packages are built, not a cycle.
    return {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in edges.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", ["adapters.discord", "adapters.telegram", "bot", "storage"])
def test_no_import_cycle(package: str) -> None:
    edges = graph()
    inside = {m: {d for d in deps if d.startswith(package)} for m, deps in edges.items()
              if m.startswith(package)}
    assert cycle(inside) is None


def test_the_check_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
