"""The parts' import rules (each app/PART/__init__.py states them), checked so that a change can fail them.

Each module is imported in a fresh interpreter, and what came along is read from sys.modules: an import
hidden in a function that runs at import time, or pulled in by app/__init__.py, counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
# What each part may not bring in; a module named here has a rule of its own, stricter than its part's.
ANALYSIS_ONLY = (
    "flask", "sqlalchemy", "pandas", "sklearn",
    "app.web", "app.store", "app.model", "app.training", "app.config",
)  # fmt: skip
FORBIDDEN = {
    "model": ("flask", "sqlalchemy", "limits", "app.web", "app.store", "app.config"),
    "store": ("flask", "app.web", "app.model"),
    "training": ("flask", "app.web"),
    "experiment": ("flask", "app.web"),
    "experiment.analysis": ANALYSIS_ONLY,
    "experiment.sample_ratio": ANALYSIS_ONLY,
    "experiment.summary": ANALYSIS_ONLY,
}


def modules_of(part: str) -> list[str]:
    return [f"app.{part}.{path.stem}".removesuffix(".__init__") for path in sorted((APP / part).glob("*.py"))]


def rule_of(module: str) -> tuple[str, ...]:
    """The forbidden imports of a module: its own rule, else its part's."""
    return FORBIDDEN.get(module.removeprefix("app."), FORBIDDEN[module.split(".")[1]])


def loaded_after_import(module: str) -> list[str]:
    code = f"import importlib, sys; importlib.import_module({module!r}); print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=APP.parent, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def forbidden_among(loaded: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in loaded if any(name == top or name.startswith(f"{top}.") for top in forbidden))


PARTS = ("model", "store", "training", "experiment")


@pytest.mark.parametrize("module", [module for part in PARTS for module in modules_of(part)])
def test_a_module_brings_in_nothing_its_part_may_not_import(module: str) -> None:
    assert forbidden_among(loaded_after_import(module), rule_of(module)) == []


def test_the_check_sees_a_forbidden_import() -> None:
    """The check itself can fail: the web side loads Flask and the store."""
    assert forbidden_among(loaded_after_import("app.web.api.recommend"), FORBIDDEN["model"]) != []


def model_imports(path: Path) -> set[str]:
    """The app.model modules a file names in its imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app.model"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("app.model"))
    return names


def test_the_web_side_reaches_the_model_only_through_the_recommender() -> None:
    reached = {str(path.relative_to(APP)): model_imports(path) for path in sorted((APP / "web").rglob("*.py"))}
    assert {file: names for file, names in reached.items() if names - {"app.model.recommender"}} == {}
