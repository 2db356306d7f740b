"""Record episodes from any Driver, replay an Episode's actions on one, save what was recorded.

Recording follows LeRobot's loop (FORMATS §3.2): per tick ``obs = get_observation()`` ->
``action = policy(obs, k)`` -> ``sent = send_action(action)`` -> store (obs, sent) -> wait for
the next tick. Timestamps are ``k / fps`` (as in LeRobot datasets), the recorded ``action`` is
what the robot side actually sent (clamped), wall-clock jitter goes to the provenance.

A link or safety fault ends the recording: the steps recorded so far become a partial episode
(``meta.provenance["partial"] = True``, ``["fault"]`` = the error), which is valid and is given to
the sink like any other, so nothing recorded is lost. :class:`RecordResult` carries the fault;
:meth:`RecordResult.raise_for_fault` re-raises it after the data is saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.bridge.loop import RateLoop
from sim.bridge.protocol import (
    Capabilities,
    Driver,
    action_from_observation,
    as_action_vector,
    split_observation,
)
from sim.episode import Episode, EpisodeMeta
from sim.errors import BridgeError, ConfigError, FormatError, SafetyError, SchemaError
from sim.io.writer import Writer

log = logging.getLogger("sim.bridge.record")

Policy = Callable[[Mapping[str, np.ndarray], int], "np.ndarray | None"]
"""``policy(obs, k) -> action (m,)`` or None (= hold the observed position)."""


class EpisodeRecorder:
    """Accumulates (observation, sent action) steps into an :class:`Episode`."""

    def __init__(
        self,
        caps: Capabilities,
        fps: float,
        task: str,
        instruction: str = "",
        source: str = "hardware",
        seed: int | None = None,
    ) -> None:
        self.caps, self.fps, self.task = caps, float(fps), task
        self.instruction, self.source, self.seed = instruction, source, seed
        self.obs: list[Mapping[str, np.ndarray]] = []
        self.actions: list[np.ndarray] = []
        self.wall: list[float] = []

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, obs: Mapping[str, np.ndarray], action: np.ndarray, t_wall: float) -> None:
        self.obs.append(obs)
        self.actions.append(np.asarray(action, dtype=np.float64))
        self.wall.append(t_wall)

    def to_episode(
        self, success: bool | None = None, provenance: Mapping[str, Any] | None = None
    ) -> Episode:
        """The recorded steps as a validated Episode (``success`` defaults to the driver's
        ``success`` observation at the last step, when it has one)."""
        T = len(self)
        if T == 0:
            raise SchemaError(f"recording of {self.task!r} has no steps")
        parts = [split_observation(o) for o in self.obs]
        first = parts[0]

        def stack(get: Callable[[dict], Any]) -> np.ndarray:
            return np.stack([np.asarray(get(p), dtype=np.float64) for p in parts])

        def poses(group: str, name: str) -> np.ndarray:
            x = stack(lambda p: p[group][name])
            x[:, 3:] /= np.linalg.norm(x[:, 3:], axis=1, keepdims=True)  # re-unit noisy quats
            return x

        if success is None and "success" in first:
            success = bool(np.asarray(parts[-1]["success"]) > 0.5)
        wall = np.asarray(self.wall)
        prov = {
            "driver": self.caps.driver,
            "recorded_at": time.time(),
            "wall_period_s": {
                "mean": float(np.diff(wall).mean()) if T > 1 else 0.0,
                "max": float(np.diff(wall).max()) if T > 1 else 0.0,
            },
            **dict(provenance or {}),
        }
        ep = Episode(
            meta=EpisodeMeta(
                task=self.task,
                robot=self.caps.robot,
                fps=self.fps,
                source=self.source,
                success=success,
                seed=self.seed,
                instruction=self.instruction,
                provenance=prov,
            ),
            time=np.arange(T) / self.fps,
            joint_names=list(self.caps.joint_names),
            qpos=stack(lambda p: p["qpos"]) if "qpos" in first else None,
            qvel=stack(lambda p: p["qvel"]) if "qvel" in first else None,
            action_names=list(self.caps.action_names),
            action=np.stack(self.actions),
            ee={a: poses("ee", a) for a in first["ee"]},
            gripper={a: stack(lambda p, a=a: p["gripper"][a]).reshape(T) for a in first["gripper"]},
            objects={o: poses("objects", o) for o in first["objects"]},
            images={
                c: np.stack([np.asarray(p["images"][c], dtype=np.uint8) for p in parts])
                for c in first["images"]
            },
        )
        return ep.validate()


@dataclass
class RecordResult:
    """Episodes recorded (the last may be partial), per-episode loop jitter, and the fault."""

    episodes: list[Episode] = field(default_factory=list)
    jitter: list[dict[str, float]] = field(default_factory=list)
    fault: str | None = None
    error: BaseException | None = None

    def raise_for_fault(self) -> None:
        """Raise a BridgeError (SafetyError for safety faults) if the recording was cut short."""
        if self.error is None:
            return
        n = len(self.episodes)
        partial = sum(bool(e.meta.provenance.get("partial")) for e in self.episodes)
        msg = (
            f"recording stopped: {self.fault}; kept {n - partial} complete and {partial} "
            "partial episode(s)"
        )
        cls = SafetyError if isinstance(self.error, SafetyError) else BridgeError
        raise cls(msg) from self.error


def hold_policy(caps: Capabilities) -> Policy:
    """Policy that keeps the position observed at the first step (observation-only recording)."""
    held: dict[str, np.ndarray] = {}

    def policy(obs: Mapping[str, np.ndarray], k: int) -> np.ndarray:
        if "a" not in held:
            held["a"] = action_from_observation(obs, caps)
        return held["a"]

    return policy


def actions_policy(actions: np.ndarray) -> Policy:
    """Policy that plays back a (T, m) action array (the last row is held past the end)."""
    actions = np.asarray(actions, dtype=np.float64)

    def policy(obs: Mapping[str, np.ndarray], k: int) -> np.ndarray:
        return actions[min(k, len(actions) - 1)]

    return policy


def record_episodes(
    driver: Driver,
    n_episodes: int,
    steps: int,
    *,
    fps: float | None = None,
    policy: Policy | Callable[[int], Policy] | None = None,
    task: str = "",
    instruction: str = "",
    reset: Callable[[int], None] | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    seed: int | None = None,
) -> RecordResult:
    """Record ``n_episodes`` of ``steps`` ticks each from a connected driver at ``fps``.

    Args:
        driver: any Driver (twin, bridge client, vendor adapter), already connected.
        fps: control/sampling rate [Hz]; default the driver's ``capabilities.fps``.
        policy: ``policy(obs, k)``, or a factory ``policy(i)`` returning one per episode
            (detected by having one parameter); None = hold the first observed position.
        task: task name stored in each Episode (and as the LeRobot task string).
        reset: called with the episode index before each episode (e.g. ``client.reset``).
        on_episode: called with each finished (or partial) Episode, e.g. a dataset sink's
            ``add``, so nothing is lost if a later episode fails.
        seed: run seed; episode i gets ``seed + i`` in its metadata.

    Returns:
        RecordResult; a link/safety fault stops recording and is reported in ``fault``.
    """
    caps = driver.capabilities
    fps = float(fps or caps.fps)
    if fps > caps.fps_max + 1e-9:
        raise ConfigError(f"record: fps {fps} exceeds the driver's maximum {caps.fps_max}")
    if n_episodes < 1 or steps < 1:
        raise ConfigError(f"record: need n_episodes >= 1 and steps >= 1, got {n_episodes}, {steps}")
    task = task or f"record_{caps.robot}"
    result = RecordResult()
    for i in range(n_episodes):
        ep_policy = _episode_policy(policy, i, caps)
        rec = EpisodeRecorder(caps, fps, task, instruction, seed=None if seed is None else seed + i)
        loop = RateLoop(fps)
        try:
            if reset is not None:
                reset(i)
            for k in range(steps):
                obs = driver.get_observation()
                action = ep_policy(obs, k)
                if action is None:
                    action = action_from_observation(obs, caps)
                sent = driver.send_action(as_action_vector(action, caps.action_names))
                rec.add(obs, sent, time.monotonic())
                if k < steps - 1:
                    loop.wait()
        except BridgeError as e:
            result.fault = f"episode {i}, step {len(rec)}: {e}"
            result.error = e
            log.error("recording fault: %s", result.fault)
            if len(rec):
                _finish(rec, result, loop, on_episode, {"partial": True, "fault": str(e)})
            return result
        _finish(rec, result, loop, on_episode, {"partial": False})
    return result


def _episode_policy(policy: Any, i: int, caps: Capabilities) -> Policy:
    if policy is None:
        return hold_policy(caps)
    import inspect

    try:
        n_params = len(inspect.signature(policy).parameters)
    except (TypeError, ValueError):
        n_params = 2
    return policy(i) if n_params == 1 else policy


def _finish(
    rec: EpisodeRecorder,
    result: RecordResult,
    loop: RateLoop,
    on_episode: Callable[[Episode], None] | None,
    prov: dict[str, Any],
) -> None:
    jitter = loop.stats.summary()
    ep = rec.to_episode(provenance={**prov, "jitter": jitter})
    result.episodes.append(ep)
    result.jitter.append(jitter)
    if on_episode is not None:
        on_episode(ep)


# ---------------------------------------------------------------------------------- replay
@dataclass
class ReplayResult:
    """What happened when an Episode's actions were replayed on a driver."""

    episode: Episode  # the replay as recorded (obs + sent actions)
    clamped_steps: int  # steps where the sent action differed from the requested one
    max_clamp: float  # largest |sent - requested| [rad or opening]
    tracking_rms: dict[str, float]  # per joint RMS of (observed qpos - source qpos) [rad]
    success: bool | None
    jitter: dict[str, float]
    dry_run: ReplayResult | None = None

    def summary(self) -> dict[str, Any]:
        out = {
            "steps": len(self.episode),
            "clamped_steps": self.clamped_steps,
            "max_clamp": self.max_clamp,
            "success": self.success,
            "jitter": self.jitter,
            "tracking_rms_max": max(self.tracking_rms.values(), default=0.0),
        }
        if self.dry_run is not None:
            out["dry_run"] = self.dry_run.summary()
        return out


def replay_episode(
    driver: Driver,
    episode: Episode,
    *,
    fps: float | None = None,
    dry_run: Driver | None = None,
    max_dry_run_clamp: float | None = 0.05,
    home_s: float = 0.0,
    realtime: bool = True,
) -> ReplayResult:
    """Send ``episode.action`` to ``driver`` at the episode's fps and record what happens.

    Args:
        driver: connected driver; its ``action_names`` must equal the episode's.
        fps: replay rate [Hz]; default ``episode.meta.fps``.
        dry_run: a connected twin to replay on first (unpaced); if any action is clamped there by
            more than ``max_dry_run_clamp``, the replay on ``driver`` is refused (SafetyError).
        home_s: first move from the current position to the first action, linearly over this
            long [s] (not recorded); 0 = start immediately.
        realtime: pace with a RateLoop (False for lockstep twins).

    Raises:
        SchemaError: the episode has no actions or its action names differ from the driver's.
        SafetyError: the dry run clamped too much.
        BridgeError: the link failed during the replay.
    """
    episode.require("action")
    caps = driver.capabilities
    if list(episode.action_names) != list(caps.action_names):
        raise SchemaError(
            f"replay: episode action names {episode.action_names} differ from "
            f"the driver's {caps.action_names}"
        )
    dry = None
    if dry_run is not None:
        dry = replay_episode(dry_run, episode, fps=fps, dry_run=None, home_s=0.0, realtime=False)
        if max_dry_run_clamp is not None and dry.max_clamp > max_dry_run_clamp:
            raise SafetyError(
                f"replay refused: dry run on {dry_run.capabilities.driver!r} clamped "
                f"{dry.clamped_steps} steps by up to {dry.max_clamp:.3f} (max "
                f"{max_dry_run_clamp}); check the episode against the robot's limits"
            )
    fps = float(fps or episode.meta.fps)
    actions = np.asarray(episode.action, dtype=np.float64)
    if home_s > 0:
        _home(driver, actions[0], home_s, fps)
    rec = EpisodeRecorder(
        caps,
        fps,
        episode.meta.task,
        episode.meta.instruction,
        source=f"replay:{episode.meta.source}",
        seed=episode.meta.seed,
    )
    loop = RateLoop(fps)
    for k, a in enumerate(actions):
        obs = driver.get_observation()
        sent = driver.send_action(a)
        rec.add(obs, sent, time.monotonic())
        if realtime and k < len(actions) - 1:
            loop.wait()
    ep = rec.to_episode(
        provenance={"replay_of": episode.meta.source, "jitter": loop.stats.summary()}
    )
    sent = np.asarray(ep.action)
    diff = np.abs(sent - actions)
    rms: dict[str, float] = {}
    if episode.qpos is not None and ep.qpos is not None:
        err = ep.qpos - np.asarray(episode.qpos)
        rms = {n: float(np.sqrt(np.mean(err[:, j] ** 2))) for j, n in enumerate(caps.joint_names)}
    return ReplayResult(
        episode=ep,
        clamped_steps=int(np.count_nonzero(diff.max(1) > 1e-9)),
        max_clamp=float(diff.max()),
        tracking_rms=rms,
        success=ep.meta.success,
        jitter=loop.stats.summary(),
        dry_run=dry,
    )


def _home(driver: Driver, target: np.ndarray, duration_s: float, fps: float) -> None:
    """Linear move from the observed position to ``target`` over ``duration_s`` [s]."""
    start = action_from_observation(driver.get_observation(), driver.capabilities)
    n = max(1, int(round(duration_s * fps)))
    loop = RateLoop(fps)
    for k in range(1, n + 1):
        driver.send_action(start + (target - start) * (k / n))
        loop.wait()


# ---------------------------------------------------------------------------------- writers
RECORD_FORMATS = ("lerobot", "npz")
AUDIT_FILE = {"lerobot": "meta/bridge_audit.jsonl", "npz": "bridge_audit.jsonl"}


def open_writer(
    root: str | Path,
    fmt: str = "lerobot",
    overwrite: bool = False,
    config: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> Writer:
    """The dataset writer for ``fmt``: "lerobot" (v3.0 dataset) or "npz" (plain files, see
    :mod:`sim.io.bridge_record`); both implement :class:`sim.io.writer.Writer`."""
    if fmt == "lerobot":
        from sim.io.lerobot import LeRobotWriter

        return LeRobotWriter(root, config=config, overwrite=overwrite, resume=resume)
    if fmt == "npz":
        from sim.io.bridge_record import NpzWriter

        return NpzWriter(root, overwrite=overwrite, resume=resume)
    raise ConfigError(f"record: unknown output format {fmt!r}; expected one of {RECORD_FORMATS}")


def close_writer(writer: Writer, files: Mapping[str, bytes] | None = None) -> Path | None:
    """Stage ``files`` (relative path -> bytes) and publish; None when nothing was recorded
    (then the empty staging folder is removed, so a rerun is not refused)."""
    if writer.num_staged == 0:
        discard_empty(writer)
        return None
    staged_later: dict[str, bytes] = {}
    for rel, data in (files or {}).items():
        if hasattr(writer, "stage_file"):
            writer.stage_file(rel, data)
        else:  # a writer without stage_file: written beside the published data below
            staged_later[rel] = data
    path = writer.finalize()
    for rel, data in staged_later.items():
        from sim.io.atomic import atomic_write_bytes

        atomic_write_bytes(Path(path) / rel, data)
    return path


def discard_empty(writer: Writer) -> None:
    """Remove the staging folder of a writer that staged nothing (e.g. the robot refused us)."""
    from sim.io.atomic import remove_tree

    if writer.num_staged == 0 and not writer.published:
        remove_tree(writer.partial)


def load_episodes(root: str | Path) -> list[Episode]:
    """All episodes under ``root``: a LeRobot dataset (meta/info.json) or an npz directory."""
    root = Path(root)
    if (root / "meta" / "info.json").exists():
        from sim.io.lerobot import read_lerobot

        return read_lerobot(root)
    if not any(root.glob("episode_*.npz")):
        raise FormatError(f"{root}: neither a LeRobot dataset (meta/info.json) nor episode_*.npz")
    from sim.io.bridge_record import read_npz_dir

    return read_npz_dir(root)
