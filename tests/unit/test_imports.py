"""Module hygiene: every module imports on its own, and the pure core imports no I/O library
(the dependency direction of the design: pure logic apart from aiohttp.web, Redis and HTTP).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sidecar"
MODULES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if path.name != "__main__.py"
)
PURE = [
    "sidecar/auth/flow.py",
    "sidecar/auth/model.py",
    "sidecar/auth/seal.py",
    "sidecar/proxy/targets.py",
    "sidecar/proxy/headers.py",
    "sidecar/cors.py",
    "sidecar/errors.py",
    "sidecar/config.py",
]
IO_LIBRARIES = ("aiohttp", "redis", "aiohttp_session", "structlog", "prometheus_client")


def test_every_module_imports_on_its_own() -> None:
    """Each module imports in a fresh interpreter state (no hidden import-order dependency)."""
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('sidecar')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(" + repr(MODULES) + "))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"ok {len(MODULES)}"


@pytest.mark.parametrize("path", PURE)
def test_pure_modules_import_no_io_library(path: str) -> None:
    """The sans-IO core stays free of aiohttp, Redis, logging and metrics libraries."""
    tree = ast.parse((PACKAGE.parent / path).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & set(IO_LIBRARIES), (path, sorted(imported & set(IO_LIBRARIES)))


def test_the_package_root_exports_only_the_version() -> None:
    """Importing ``sidecar`` does no work and offers only ``__version__``."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    assert [type(node).__name__ for node in tree.body] == ["Assign"]
