"""The product's shape, checked: layers, one owner per concern.

* the import-linter contracts in pyproject.toml (the core imports neither
  shell, the shells import nothing of each other but the Celery client, no
  cycles inside a package);
* the top-level modules import-linter cannot see: models.py and settings.py
  import nothing above them;
* only settings.py reads the environment; only auction/ledger.py changes a
  balance; no product code names the test package; no comment points to a
  document outside the repository.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["auction", "hall", "workers", "devsim", "models.py", "settings.py", "run.py"]


def product_files() -> list[Path]:
    out: list[Path] = []
    for entry in PRODUCT:
        path = ROOT / entry
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_models_and_settings_sit_below_the_core():
    above = ("auction", "hall", "workers", "devsim", "run", "tests")
    for name, allowed in (("settings.py", set()), ("models.py", {"settings"})):
        ours = {m.split(".")[0] for m in imported(ROOT / name)} & (set(above) | {"settings",
                                                                              "models"})
        assert ours <= allowed, (name, ours)


def test_only_settings_reads_the_environment():
    readers = []
    for path in product_files():
        if path.name == "settings.py" and path.parent == ROOT:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(", text):
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_only_the_ledger_changes_a_balance():
    writers = []
    pattern = re.compile(r"balance\s*=\s*User\.balance|User\.balance\s*[+-]|\.balance\s*[+-]?=(?!=)")
    for path in product_files():
        rel = str(path.relative_to(ROOT))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code):
                writers.append(f"{rel}:{n}")
    assert writers and all(w.startswith("auction/ledger.py:") for w in writers), writers


def test_no_product_code_names_the_tests():
    for path in product_files():
        names = imported(path)
        assert not any(n == "tests" or n.startswith("tests.") for n in names), path
        assert '"tests.' not in path.read_text(encoding="utf-8"), path


def test_comments_point_only_inside_the_repository():
    outside = re.compile(r"ARCHITECTURE\.md|STYLE\.md|\.\./shared|decision \d+\b")
    found = []
    for path in product_files() + sorted((ROOT / "auction" / "lua").glob("*.lua")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if outside.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
