"""Shared fixtures: tiny, fast scenes; paths to the shared third-party data."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim  # noqa: F401  (sets MUJOCO_GL=egl before any test module imports mujoco)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data {p} is absent (tests read ../shared; nothing is copied)")
    return p


_SCENES: dict = {}


@pytest.fixture
def scene_ik():
    """(scene, ik) factory cached per (robot, task): compiling once keeps the suite fast."""
    from sim.control.ik import ArmIK
    from sim.tasks import build_scene

    def get(task: str = "stack_blocks", robot: str = "demoforge_humanoid"):
        key = (robot, task)
        if key not in _SCENES:
            scene = build_scene(robot, task)
            _SCENES[key] = (scene, ArmIK.for_scene(scene))
        return _SCENES[key]

    return get
