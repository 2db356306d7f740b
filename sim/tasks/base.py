"""The Task protocol and the task registry.

A task is one short file plus one props MJCF: props, reset distribution per level (rng in),
physics-judged success predicate, per-step subtask signals, and a scripted demonstrator that
returns a waypoint :class:`~sim.control.plan.Plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from sim.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    import mujoco

    from sim.control.plan import Plan
    from sim.model.scene import Scene

LEVELS = ("D0", "D1", "D2")


@dataclass(frozen=True)
class Subtask:
    """One object-centric subtask of one arm (MimicGen's subtask spec, per arm as in DexMimicGen).

    During the subtask the EE moves relative to ``ref`` (a body name; ``None`` = robot/world
    frame, e.g. a final retreat); it ends at the first step where the task's subtask signal
    ``signal`` (a key of :meth:`Task.subtasks`) turns true, or at the episode's end when
    ``signal`` is None. ``sync`` names a group of subtasks on several arms that move together
    under one shared transform (bimanual carry/fold).
    """

    label: str
    ref: str | None
    signal: str | None
    arm: str = "right"
    sync: str | None = None


@runtime_checkable
class Task(Protocol):
    """What every task provides. Positions are in the world frame [m].

    Task classes subclass this protocol explicitly (``class StackBlocks(Task)``) to inherit the
    documented defaults of the optional hooks below; a task only overrides what it needs.
    """

    name: str
    room: str  # scenes/rooms/<room>.xml
    props: str  # props MJCF, relative to scenes/, attached at the room's workspace site
    objects: tuple[str, ...]  # bodies whose poses are recorded in Episode.objects
    arms: tuple[str, ...]  # arms the scripted demonstrator uses
    instruction: str  # natural-language task string
    #: Bodies a weld hand (no fingers) may hold; empty = all of ``objects``.
    graspable: tuple[str, ...] = ()
    #: Waypoint labels whose durations are physical (planned against moving objects, e.g. an
    #: interception on a belt): the time warp of :mod:`sim.augment.timing` leaves them as planned.
    timed_labels: tuple[str, ...] = ()
    #: Rotational symmetry of objects about their z axis: name -> order n (the object looks the
    #: same turned by 360°/n; 0 = round). The ``demos`` source maps a segment onto the equivalent
    #: object frame closest to the source's. Default: none.
    symmetry: Mapping[str, int] = MappingProxyType({})

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        """Sample the props' initial state for `level` (D0 narrow .. D2 wide) into scene.data."""

    def success(self, scene: Scene) -> bool:
        """Task success, judged on the physics state only."""

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        """Per-step subtask signals (e.g. grasped, placed)."""

    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        """Scripted demonstrator: a waypoint plan from the state after reset, with nominal
        durations (the scripted source applies the human-like time warp)."""

    # ------------------------------------------------------------------ hooks with defaults
    def edit_spec(self, spec: mujoco.MjSpec) -> None:
        """Edit the scene's MjSpec before compiling (default: nothing)."""
        return None

    def bind(self, scene: Scene) -> None:
        """Cache model ids once after compiling (default: nothing)."""
        return None

    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Ordered object-centric subtasks per arm for the scene after reset (MimicGen spec).

        Default: one subtask on the first arm relative to the first object, to the episode end.
        """
        return [Subtask("task", self.objects[0] if self.objects else None, None, self.arms[0])]

    def ref_frame(self, ref: str, objects: Mapping[str, np.ndarray]) -> np.ndarray:
        """World pose (7,) of reference ``ref`` given object poses ``objects`` (name -> (7,)).

        Default: the body's own pose. Tasks whose references are not rigid frames (cloth
        vertices translate only) build a frame from several points.
        """
        return np.asarray(objects[ref], float)


def default_subtasks(task: Task, scene: Scene) -> list[Subtask]:
    """``task.subtask_spec(scene)`` for tasks that predate the hook (same default as Task)."""
    f = getattr(task, "subtask_spec", None)
    return f(scene) if f is not None else Task.subtask_spec(task, scene)


def ref_pose(task: Task, ref: str, objects: Mapping[str, np.ndarray]) -> np.ndarray:
    """``task.ref_frame(ref, objects)`` with the default for tasks lacking the hook."""
    f = getattr(task, "ref_frame", None)
    return f(ref, objects) if f is not None else np.asarray(objects[ref], float)


_REGISTRY: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator: register a task under `name` (its gymnasium env follows automatically)."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ConfigError(f"task {name!r} registered twice ({_REGISTRY[name]} and {cls})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def known_tasks() -> list[str]:
    return sorted(_REGISTRY)


def make_task(name: str, **cfg: Any) -> Task:
    """Instantiate a registered task with its config (unknown keys raise, naming the key)."""
    if name not in _REGISTRY:
        raise UnknownNameError("task", name, known_tasks())
    cls = _REGISTRY[name]
    try:
        return cls(**cfg)
    except TypeError as e:
        raise ConfigError(f"task {name!r}: bad config {sorted(cfg)}: {e}") from None


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise UnknownNameError("level", level, LEVELS)
    return level


def sample_xy_yaw(
    rng: np.random.Generator, ranges: dict[str, tuple[float, float]]
) -> tuple[float, float, float]:
    """Sample (x, y, yaw) uniformly from {'x': (lo, hi), 'y': ..., 'yaw': ...} (missing = 0)."""
    vals = []
    for key in ("x", "y", "yaw"):
        lo, hi = ranges.get(key, (0.0, 0.0))
        vals.append(float(rng.uniform(lo, hi)))
    return vals[0], vals[1], vals[2]
