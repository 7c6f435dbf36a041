"""dvc.yaml: every stage's deps cover the code its command runs, so editing that code re-runs it.

The code a stage runs is the transitive closure of `flowmimic` imports of the module its
`flowmimic <command>` calls (`cli.STAGES`), read from the source (imports only for type checking
excepted). Left out on purpose: modules that cannot change a stage's outputs -- the params schema
(values are tracked as DVC params), the error classes and the CLI -- and docstring-only packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from flowmimic.cli import STAGES

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
NOT_OUTPUT_DECIDING = {"src/flowmimic/params.py", "src/flowmimic/errors.py", "src/flowmimic/cli.py",
                       "src/flowmimic/__init__.py", "src/flowmimic/__main__.py"}
# (module, lazily imported module) pairs no stage runs: viz reads raw sequences only for the
# `flowmimic plot-sequence` command.
NOT_RUN_BY_STAGES = {("flowmimic.viz", "flowmimic.sources")}


def _module_file(name: str) -> Path | None:
    base = SRC / name.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for stmt in node.body for n in ast.walk(stmt)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flowmimic"):
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("flowmimic")}
    return out


def _docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body)


def code_closure(module: str) -> set[str]:
    """Repository-relative paths of the files `module` runs (itself, its imports, their packages)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]      # parent packages run first
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += [m for m in _imports(path) if (name, m) not in NOT_RUN_BY_STAGES
                 and not any((name, m.rpartition(".")[0]) == pair for pair in NOT_RUN_BY_STAGES)]
    return {p.relative_to(REPO).as_posix() for p in seen
            if not (p.name == "__init__.py" and _docstring_only(p))} - NOT_OUTPUT_DECIDING


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


DVC = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("stage", sorted(DVC))
def test_stage_deps_cover_the_code_it_runs(stage):
    # `PYTHONPATH=src` first: a stage runs the code of its own workspace (dvc exp --temp/--queue copies)
    env, program, command = DVC[stage]["cmd"].split()[:3]
    assert env == "PYTHONPATH=src" and program == "flowmimic" and command in STAGES, DVC[stage]["cmd"]
    deps = [d for d in DVC[stage]["deps"] if isinstance(d, str)]
    missing = sorted(p for p in code_closure(STAGES[command][0]) if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage}: deps miss code it runs: {missing}"


def test_closure_follows_imports():
    closure = code_closure("flowmimic.stages.validate")
    assert {"src/flowmimic/stages/validate.py", "src/flowmimic/features/humanml3d.py",
            "src/flowmimic/body/skeleton.py", "src/flowmimic/cache/catalog.py"} <= closure
    assert "src/flowmimic/params.py" not in closure and "src/flowmimic/stages/train.py" not in closure
