"""Task registry. Importing this package registers every built-in task."""

from __future__ import annotations

import importlib
import pkgutil

from sim.tasks.base import LEVELS, Task, known_tasks, make_task, register_task

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["LEVELS", "Task", "known_tasks", "make_task", "register_task"]
