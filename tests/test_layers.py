"""The layers (kernel → domain → stages → app) import downward only and no module imports itself back, counting
imports inside functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("curation", "annotation", "exports")
KERNEL = "curation.core"
DOMAIN = "curation.domain"
APP = "curation.app"


def module_names() -> dict[str, Path]:
    names = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            names[name] = path
    return names


def imported(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports anywhere (top level, functions, importlib calls)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in {"import_module", "__import__"} and node.args and isinstance(node.args[0], ast.Constant):
                targets = [str(node.args[0].value)]
        found |= {t for t in targets if t in known}
    return found


def graph() -> dict[str, set[str]]:
    names = module_names()
    return {name: imported(path, set(names)) - {name} for name, path in names.items()}


def layer(module: str) -> str:
    if module == "curation" or module.startswith(KERNEL):
        return "kernel"
    if module.startswith(DOMAIN):
        return "domain"
    if module.startswith(APP):
        return "app"
    return "stage"


def stage_package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "curation" else parts[0]


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt.rsplit(".", 1)[0] == node or node.startswith(nxt + "."):
                continue  # a package and its own modules (importing `pkg.mod` runs `pkg/__init__`)
            if state[nxt] == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif state[nxt] == 0:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if state[module] == 0:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_import_downward_only() -> None:
    wrong = []
    for module, targets in graph().items():
        for target in targets:
            if layer(module) == "kernel" and layer(target) != "kernel":
                wrong.append(f"kernel {module} imports {target}")
            if layer(module) == "domain" and layer(target) not in ("kernel", "domain"):
                wrong.append(f"domain {module} imports {target}")
            if layer(module) == "stage" and layer(target) == "app":
                wrong.append(f"stage {module} imports the app's {target}")
            if layer(module) == "stage" and layer(target) == "stage" and stage_package(module) != stage_package(target):
                wrong.append(f"stage {module} imports another stage's {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import importlib\ndef f():\n    from curation.app import cli\n    importlib.import_module('exports.export')\n",
        encoding="utf-8",
    )
    assert imported(source, {"curation.app", "curation.app.cli", "exports.export"}) == {
        "curation.app",
        "curation.app.cli",
        "exports.export",
    }


def test_benchmarks_import_the_project_never_the_tests() -> None:
    wrong = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            wrong += [f"{path.name} imports {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert not wrong, "\n".join(wrong)
