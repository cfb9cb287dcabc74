"""The test suite's own layout: each test tells its tier by where it lives, and test modules share
helpers through tests/helpers (or a conftest), never by importing another test module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_no_test_module_imports_another_test_module():
    offenders = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert not offenders, "move shared code to tests/helpers:\n" + "\n".join(offenders)


def test_unit_tests_need_no_running_service():
    """tests/unit holds tests of pure code: none is marked (or, through a fixture that needs the
    cluster or Superset, auto-marked) as integration, e2e or browser."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "integration or e2e or browser",
            str(TESTS / "unit"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 5 and not collected, (
        "tests in tests/unit that need a running service (move them to tests/integration):\n"
        + "\n".join(collected)
        + proc.stderr[-2000:]
    )


def test_the_auto_mark_catches_a_service_fixture():
    """The rule above is only as good as the auto-mark: a unit test asking for `loader_conn`
    without any mark is collected as integration."""
    probe = TESTS / "unit" / "test_zz_layout_probe.py"
    probe.write_text("def test_probe(loader_conn):\n    pass\n", encoding="utf-8")
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "-m",
                "integration",
                str(probe),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        probe.unlink()
    assert "test_zz_layout_probe.py::test_probe" in proc.stdout, proc.stdout + proc.stderr
