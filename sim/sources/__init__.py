"""Plan sources: where an attempt's per-step EE targets come from.

One attempt, whatever the source (``sim.generate`` runs this loop once)::

    streams = attempt_streams(run_seed, attempt)           # named, independent rng streams
    scene.reset(streams.reset, level)                      # task reset distribution
    randomizer(scene, streams.randomize)                   # domain randomization (values only)
    targets = source.plan(scene, streams.source)           # per-arm EE targets + gripper + labels
    targets = noise(targets, streams.noise)                # action noise on the EE targets
    execute(scene, ik, targets, rig)                       # IK for every step, then mj_step
    task.success(scene)                                    # judged in physics

Sources are registered by name (``scripted``: the task's demonstrator; ``demos``: segments of
recorded source episodes transformed to the new scene) and built once per worker process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from sim.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from sim.control.plan import Targets
    from sim.model.scene import Scene

#: Stream name -> fixed spawn-key index. Never renumber: a new stream gets a new index, so adding
#: a randomizer or a source never shifts the draws of the others.
STREAM_IDS: dict[str, int] = {"reset": 0, "randomize": 1, "source": 2, "noise": 3}


@dataclass(frozen=True)
class Streams:
    """The named rng streams of one attempt (see :func:`attempt_streams`)."""

    reset: np.random.Generator
    randomize: np.random.Generator
    source: np.random.Generator
    noise: np.random.Generator
    seeds: dict[str, int]  # stream -> 64-bit seed word, recorded in provenance


def stream_seed(run_seed: int, attempt: int, name: str) -> int:
    """Seed word of stream ``name`` for ``attempt`` of a run (independent of worker count)."""
    if name not in STREAM_IDS:
        raise UnknownNameError("rng stream", name, sorted(STREAM_IDS))
    ss = np.random.SeedSequence(entropy=int(run_seed), spawn_key=(int(attempt), STREAM_IDS[name]))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def attempt_streams(run_seed: int, attempt: int) -> Streams:
    """Independent generators for attempt ``attempt`` of a run seeded ``run_seed``."""
    seeds = {name: stream_seed(run_seed, attempt, name) for name in STREAM_IDS}
    gens = {name: np.random.default_rng(s) for name, s in seeds.items()}
    return Streams(seeds=seeds, **gens)


@runtime_checkable
class PlanSource(Protocol):
    """Produces per-control-step targets for one attempt from the scene after reset."""

    name: str

    def plan(self, scene: Scene, rng: np.random.Generator) -> Targets:
        """Per-arm EE targets, gripper commands, segment labels/refs and provenance.

        Raises:
            ReachError: a target lies beyond an arm's reach (the attempt counts as unreachable).
            PlanError: no plan can be made for this scene (counted under its cause).
        """


SourceFactory = Callable[..., PlanSource]
_SOURCES: dict[str, SourceFactory] = {}


def register_source(name: str) -> Callable[[SourceFactory], SourceFactory]:
    """Register a plan-source factory ``f(scene, **params) -> PlanSource`` under ``name``."""

    def deco(f: SourceFactory) -> SourceFactory:
        if name in _SOURCES:
            raise ConfigError(f"plan source {name!r} registered twice")
        _SOURCES[name] = f
        return f

    return deco


def known_sources() -> list[str]:
    _load_builtin()
    return sorted(_SOURCES)


def make_source(name: str, scene: Scene, **params: Any) -> PlanSource:
    """Build source ``name`` for ``scene`` (once per worker); unknown names/params raise."""
    _load_builtin()
    if name not in _SOURCES:
        raise UnknownNameError("source", name, sorted(_SOURCES))
    try:
        return _SOURCES[name](scene, **params)
    except TypeError as e:
        raise ConfigError(f"source {name!r}: bad parameters {sorted(params)}: {e}") from None


def _load_builtin() -> None:
    import importlib

    for mod in ("sim.sources.scripted", "sim.sources.demos"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
