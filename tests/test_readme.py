"""The README's promises, run: its Python snippets execute as written, and the quick start's
system step works as root without sudo and as a user through sudo."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_quick_start_is_two_commands_using_the_system_deps_script():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    cmds = [ln for ln in _blocks("bash")[0].splitlines() if ln and not ln.startswith("#")]
    assert len(cmds) == 2 and quick.count("```bash") == 1, cmds
    assert cmds[0].startswith("sh .ci/system-deps && pip install ")
    assert "demoforge-generate" in cmds[0]
    assert "sudo" not in cmds[0], "root in a container has no sudo: the script decides"
    assert "pytest" in cmds[1]


def _shims(tmp_path: Path, uid: int) -> dict[str, str]:
    """PATH with fake apt-get/sudo/id that log their calls (nothing is installed)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls.log"
    for name, body in (
        ("apt-get", f'echo "apt-get $*" >> {log}'),
        ("sudo", f'echo "sudo $*" >> {log}; "$@"'),
        ("id", f'[ "$1" = "-u" ] && echo {uid} || /usr/bin/id "$@"'),
    ):
        p = bin_ / name
        p.write_text(f"#!/bin/sh\n{body}\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}


@pytest.mark.parametrize("uid, via_sudo", [(0, False), (1000, True)])
def test_system_deps_as_root_without_sudo_and_as_user_with_sudo(tmp_path, uid, via_sudo):
    env = _shims(tmp_path, uid)
    if uid == 0:  # root in a container: make sure no sudo exists at all
        (tmp_path / "bin" / "sudo").unlink()
        env["PATH"] = f"{tmp_path / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    r = subprocess.run(
        ["sh", str(REPO / ".ci" / "system-deps")], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    apt = [c for c in calls if c.startswith("apt-get install")]
    assert apt and "libegl1" in apt[0] and "libgl1-mesa-dri" in apt[0]
    assert any(c.startswith("sudo apt-get install") for c in calls) == via_sudo


def test_python_snippets_run(tmp_path):
    """Every ```python block of the README, in order, in one fresh interpreter (cwd = tmp)."""
    code = "\n".join(_blocks("python"))
    assert "read_episodes" in code and "generate(" in code
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
