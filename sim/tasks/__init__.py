"""Task registry. Importing this package registers every built-in task."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

from sim.model.scene import Scene, compose_scene
from sim.tasks.base import LEVELS, Task, known_tasks, make_task, register_task

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")


def build_scene(
    robot: Any = "demoforge_humanoid",
    task: str | Task | None = "stack_blocks",
    room: str | None = None,
    control_hz: float = 20.0,
    task_cfg: dict[str, Any] | None = None,
    spec_edits: Sequence[Callable[..., Any]] = (),
) -> Scene:
    """Build a scene for (robot, task): the task by registry name (with ``task_cfg``) or as an
    object; see :func:`sim.model.scene.compose_scene` for the rest."""
    task_obj = make_task(task, **(task_cfg or {})) if isinstance(task, str) else task
    return compose_scene(robot, task_obj, room, control_hz, spec_edits)


__all__ = ["LEVELS", "Task", "build_scene", "known_tasks", "make_task", "register_task"]
