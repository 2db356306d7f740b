"""The wheel ships scenes/ and conf/, and an installed package works outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "sim").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_wheel_runs_outside_checkout(tmp_path):
    whl = tmp_path / "whl"
    shutil.rmtree(REPO / "build", ignore_errors=True)  # stale setuptools build output
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(whl), str(REPO)],
        check=True,
        timeout=300,
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(next(whl.glob("*.whl"))),
        ],
        check=True,
        timeout=300,
    )
    code = (
        "import sim, sim.paths as p; from sim.tasks import build_scene;"
        "assert 'site' in sim.__file__, sim.__file__;"
        "assert (p.conf_dir() / 'config.yaml').exists(), p.conf_dir();"
        "s = build_scene(); print('OK', p.scenes_dir(), s.model.nbody)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert r.returncode == 0 and "OK" in r.stdout and "_scenes" in r.stdout, r.stderr[-2000:]
