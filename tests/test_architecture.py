"""The package's shape: imports that run one way, and a wheel that ships the product only.

* The import graph of ``src/keyscope`` is read from the source (every ``import`` statement, at module level,
  inside functions and under ``TYPE_CHECKING`` alike) and must have no cycle.
* The wheel built from the checkout holds exactly the package's modules, its contract artefacts and its
  metadata; none of them is test tooling (tests/support/ is where that lives), and only the pytest plugin, which
  dapps use under ``ape test``, imports pytest.
"""

from __future__ import annotations

import ast
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "keyscope"
PLUGIN = "keyscope.testing.plugin"
TEST_ONLY_IMPORTS = ("pytest", "hypothesis", "support", "tests", "_pytest")
SHIPPED_CONTRACTS = (
    "KeyscopeAccount",
    "KeyscopeAccountFactory",
    "SessionKeyValidator",
    "SponsorPaymaster",
    "DemoNFT",
    "DeploylessSignatureCheck",
)


# --------------------------------------------------------------------------------------------------
# the import graph
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (at ``line`` of ``source``'s file)."""

    source: str
    target: str
    line: int


def modules_of(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a folder under ``src``) by dotted name; a package is its ``__init__``."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):  # every statement: module level, functions, TYPE_CHECKING blocks
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_edges(src: Path, package: str) -> list[Edge]:
    """The imports between modules of ``package``.

    ``import a.b.c`` and ``from a.b.c import x`` run ``a.b.c`` and the ``__init__`` of each package above it
    (the top package's ``__init__``, which re-exports the API, and the importer's own packages, which are
    already running, excepted). ``from a.b import c`` imports the submodule ``c`` and reads ``a.b``'s
    namespace: both are edges, so ``from . import x`` inside a package is an edge to its ``__init__``.
    """
    modules = modules_of(src, package)
    edges = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: list[tuple[str, int]] = []
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.extend((alias.name, node.lineno) for alias in node.names)
                continue
            base = _absolute(module, is_package, node)
            targets.append((base, node.lineno))
            targets.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        for target, line in targets:
            if target not in modules:
                continue
            parts = target.split(".")
            running = {".".join(parts[:i]) for i in range(2, len(parts))}
            running -= {parent for parent in running if module == parent or module.startswith(parent + ".")}
            for name in {target} | running:
                if name != module:
                    edges.append(Edge(module, name, line))
    return edges


def find_cycle(edges: list[Edge]) -> list[Edge] | None:
    """One cycle of the graph, as the edges that close it, or None."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Edge] = []

    def visit(node: str) -> list[Edge] | None:
        state[node] = 1
        for edge in sorted(graph.get(node, []), key=lambda e: e.target):
            if state.get(edge.target) == 1:
                start = next((i for i, e in enumerate(path) if e.source == edge.target), len(path))
                return [*path[start:], edge]
            if edge.target not in state:
                path.append(edge)
                if (found := visit(edge.target)) is not None:
                    return found
                path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle_in_the_package() -> None:
    edges = import_edges(PACKAGE.parent, "keyscope")
    assert len(edges) > 200, "the walker found too few imports: is it reading the package?"
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle:\n" + "\n".join(
        f"  {edge.source} -> {edge.target}  ({edge.source.replace('.', '/')}.py line {edge.line})"
        for edge in cycle
    )


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        # a function-level import closes the circle
        (
            {"__init__.py": "", "a.py": "from .b import f\n", "b.py": "def f():\n    from .a import g\n"},
            {"pkg.a", "pkg.b"},
        ),
        # a TYPE_CHECKING import closes it too
        (
            {
                "__init__.py": "",
                "a.py": "from .b import f\n",
                "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n",
            },
            {"pkg.a", "pkg.b"},
        ),
        # `from . import x` reads the package's __init__, which imports the importer
        (
            {"__init__.py": "from .a import f\n", "a.py": "from . import b\n", "b.py": ""},
            {"pkg", "pkg.a"},
        ),
        # importing a submodule runs its package's __init__
        (
            {
                "__init__.py": "",
                "a.py": "from .sub.c import x\n",
                "sub/__init__.py": "from .d import y\n",
                "sub/c.py": "",
                "sub/d.py": "from ..a import z\n",
            },
            {"pkg.a", "pkg.sub", "pkg.sub.d"},
        ),
    ],
)
def test_the_walker_sees_every_kind_of_cycle(tmp_path: Path, files: dict[str, str], cycle: set[str]) -> None:
    edges = import_edges(_write_package(tmp_path, files), "pkg")
    found = find_cycle(edges)
    assert found is not None
    assert {edge.source for edge in found} == cycle


def test_the_walker_accepts_imports_that_run_one_way(tmp_path: Path) -> None:
    files = {
        "__init__.py": "from .top import run\n",
        "top.py": "from .sub.c import x\nfrom .low import y\n",
        "low.py": "",
        "sub/__init__.py": "from .c import x\n",
        "sub/c.py": "from .d import f\nfrom ..low import y\n",
        "sub/d.py": "def f():\n    from ..low import y\n",
    }
    assert find_cycle(import_edges(_write_package(tmp_path, files), "pkg")) is None


# what the Python 3.10 the README and pyproject.toml promise lacks (mypy and the suite run on 3.11, and see none)
NEW_IN_PYTHON_311 = {
    "typing": {
        "Never",
        "Self",
        "LiteralString",
        "assert_never",
        "assert_type",
        "reveal_type",
        "TypeVarTuple",
        "Unpack",
        "Required",
        "NotRequired",
        "dataclass_transform",
        "get_overloads",
        "clear_overloads",
    },
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "verify", "member", "nonmember", "global_enum", "property"},
}


def _run_time_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``, which never run."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def test_the_package_runs_on_python_3_10() -> None:
    """On Python 3.10 (``requires-python = ">=3.10"``, the README's "Python 3.10+"), ``import keyscope`` failed
    with ``ImportError: cannot import name 'Never' from 'typing'``, and a sign-in message's time with
    ``AttributeError: module 'datetime' has no attribute 'UTC'``: names of 3.11's standard library, used where they
    run."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in _run_time_nodes(tree):
            if isinstance(node, ast.ImportFrom) and node.module in NEW_IN_PYTHON_311 and node.level == 0:
                found += [
                    f"{path.name}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name in NEW_IN_PYTHON_311[node.module]
                ]
            elif isinstance(node, ast.Import):
                found += [f"{path.name}: import {a.name}" for a in node.names if a.name == "tomllib"]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.attr in NEW_IN_PYTHON_311.get(node.value.id, ()):
                    found.append(f"{path.name}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.TryStar):
                found.append(f"{path.name}: except*")
    assert found == [], found


def test_the_package_imports_no_test_tooling() -> None:
    offenders = []
    for module, path in modules_of(PACKAGE.parent, "keyscope").items():
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in TEST_ONLY_IMPORTS and not (module == PLUGIN and name == "pytest"):
                    offenders.append(f"{module} line {node.lineno}: {name}")
    assert not offenders, "the package imports test tooling:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------------------------------
# the wheel
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(keyscope_wheel: Path) -> zipfile.ZipFile:
    """The wheel built from a copy of the checkout (the session's ``keyscope_wheel``); the build backend comes
    from the package index, as for any pip install."""
    return zipfile.ZipFile(keyscope_wheel)


def test_the_wheel_ships_the_package_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    metadata = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    assert {n for n in names - metadata if not n.startswith("keyscope/")} == set()
    shipped = {n for n in names if n.endswith(".py")}
    source = {"keyscope/" + p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    assert shipped == source
    assert {"keyscope/py.typed", "keyscope/local/alto-listen-localhost.cjs"} <= names
    # self-contained: every contract keyscope deploys ships, as compiled from contracts/
    artefacts = {p.name for p in (PACKAGE / "artifacts").glob("*.json")}
    assert artefacts >= {f"{name}.json" for name in SHIPPED_CONTRACTS}
    assert {n for n in names if n.startswith("keyscope/artifacts/")} == {
        f"keyscope/artifacts/{a}" for a in artefacts
    }
    # the owner's pages are served from the package: every file the consent server names is in the wheel
    static = {"keyscope/consent/static/" + p.name for p in (PACKAGE / "consent" / "static").iterdir()}
    assert static and static <= names
    entry_points = wheel.read(next(n for n in metadata if n.endswith("entry_points.txt"))).decode()
    assert "keyscope = keyscope.cli:main" in entry_points
    assert f"keyscope = {PLUGIN}" in entry_points


def test_no_module_in_the_wheel_is_test_tooling(wheel: zipfile.ZipFile) -> None:
    test_only = []
    for name in sorted(n for n in wheel.namelist() if n.endswith(".py")):
        module = name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        tree = ast.parse(wheel.read(name).decode(), name)
        for node in _imports(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(i.split(".")[0] in TEST_ONLY_IMPORTS for i in imported) and module != PLUGIN:
                test_only.append(f"{name} imports {', '.join(imported)}")
    stems = {Path(n).stem for n in wheel.namelist()}
    assert not test_only, "test tooling in the wheel:\n" + "\n".join(test_only)
    assert not stems & {"erc7562", "postgres", "conftest"}, "a test-only module is in the wheel"
    testing = sorted(n for n in wheel.namelist() if n.startswith("keyscope/testing/"))
    assert testing == ["keyscope/testing/__init__.py", "keyscope/testing/plugin.py"]


def test_the_files_handed_out_first_exist() -> None:
    """The suite's heaviest files are handed to the workers first (conftest's ``HEAVIEST_FIRST``): a renamed or
    removed one would silently go back to its place in the collection order."""
    from conftest import HEAVIEST_FIRST

    tests = Path(__file__).parent
    assert [name for name in HEAVIEST_FIRST if not (tests / name).is_file()] == []
    assert len(set(HEAVIEST_FIRST)) == len(HEAVIEST_FIRST)
