"""The mini-program's page logic (clients/miniprogram/lib, no wx.*) under
node's own test runner, so `make test` covers it; a failing node test fails this."""
from __future__ import annotations

import shutil
import subprocess

from conftest import ROOT


def test_miniprogram_logic_under_node_test():
    node = shutil.which("node")
    assert node, "node (20+) is needed for the mini-program tests"
    run = subprocess.run([node, "--test", "clients/miniprogram/test/"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 6" in run.stdout, run.stdout[-1000:]
