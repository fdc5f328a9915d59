"""The layers contract (pyproject.toml, run by pre-commit with lint-imports): it holds
on the tree, and a deliberate violation of each rule makes it fail."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"
PACKAGES = ("bridge", "orders", "payments", "payments_project", "promos")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "DJANGO_ENV_FILE": ""}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contract, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout


def test_the_copy_keeps_them_too(tree):
    assert lint_imports(tree).returncode == 0


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A lazy import of the business from the gateway core, as the inbox once did.
        ("payments/registry.py", "def _late():\n    from orders import services\n", "orders"),
        ("payments_project/views.py", "from payments import registry\n", "payments"),
        ("orders/views.py", "import stripe\n", "stripe"),
        ("payments/services.py", "import pingpp\n", "pingpp"),
        # The platform bridge stands beside the gateway core: neither imports the other.
        ("bridge/outbox.py", "from payments import registry\n", "payments"),
        ("bridge/outbox.py", "def _late():\n    from orders import selectors\n", "orders"),
    ],
)
def test_a_deliberate_violation_fails(tree, module, line, broken):
    path = tree / module
    path.write_text(path.read_text() + "\n\n" + line)
    result = lint_imports(tree)
    assert result.returncode != 0
    dotted = module.removesuffix(".py").replace("/", ".")
    assert f"{dotted} -> {broken}" in result.stdout, result.stdout


MAX_CODE_LINES = 500


def code_lines(path: Path) -> int:
    """Lines of code: neither blank, nor comments, nor docstrings."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def test_no_module_is_over_500_lines_of_code():
    """A room of about 500 lines is a room one can hold in one's head (migrations
    aside: they are history)."""
    sizes = {
        str(path.relative_to(ROOT)): code_lines(path)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert sizes, "no module found"
    too_big = {name: size for name, size in sizes.items() if size > MAX_CODE_LINES}
    assert not too_big, too_big
