"""Policy checkpoints: weights plus everything needed to act (task, features, normalization)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from sim.errors import ConfigError, FormatError
from sim.learn.actions import EEActionSpace
from sim.learn.policy import ChunkPolicy, PolicyConfig

FORMAT = "demoforge-bc"
VERSION = 2  # 2: EE action space (action_arms, gripper_arms)


@dataclass(frozen=True)
class PolicyMeta:
    """What a checkpoint says about its policy.

    Attributes:
        task, robot, level: what it was trained for (robot: registry name or parsed robot
            dict; level: the dataset's reset level).
        fps: control rate it acts at [Hz] (the dataset's frame rate).
        obs_keys, obs_names: observation features and their column names.
        action_names: action columns (joint targets [rad], gripper openings [0, 1]).
        cameras, image_size: image inputs (empty for low-dim policies), (H, W) [px].
        max_steps: default rollout length [control steps].
        dataset: the training dataset's path; ``train_steps`` gradient steps done.
        task_params: task constructor overrides the dataset was generated with.
        action_arms, gripper_arms: the EE action space's arms (empty for joint actions).
    """

    task: str
    robot: Any
    level: str
    fps: float
    obs_keys: tuple[str, ...]
    obs_names: dict[str, list[str]]
    action_names: list[str]
    cameras: tuple[str, ...]
    image_size: tuple[int, int]
    max_steps: int
    dataset: str
    train_steps: int
    task_params: dict[str, Any]
    action_arms: tuple[str, ...] = ()
    gripper_arms: tuple[str, ...] = ()

    def action_space(self) -> EEActionSpace | None:
        """The EE action space, None for joint-target policies."""
        return EEActionSpace(self.action_arms, self.gripper_arms) if self.action_arms else None


def save_checkpoint(path: str | os.PathLike, policy: ChunkPolicy, meta: PolicyMeta) -> Path:
    """Write the checkpoint (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "meta": asdict(meta),
        "policy": asdict(policy.cfg),
        "state_dict": policy.state_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: str | os.PathLike, task: str | None = None
) -> tuple[ChunkPolicy, PolicyMeta]:
    """Load a checkpoint; with ``task``, refuse one trained on another task.

    Raises:
        FormatError: not a demoforge policy checkpoint.
        ConfigError: trained on another task (names the file and both tasks).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        blob: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a non-checkpoint file
        raise FormatError(f"{path}: not a torch checkpoint ({e})") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise FormatError(f"{path}: not a {FORMAT} checkpoint (key 'format' missing or wrong)")
    if blob.get("version") != VERSION:
        raise FormatError(f"{path}: checkpoint version {blob.get('version')}; expected {VERSION}")
    m = blob["meta"]
    meta = PolicyMeta(**{f.name: m[f.name] for f in fields(PolicyMeta)})
    meta = PolicyMeta(
        **{
            **asdict(meta),
            "obs_keys": tuple(meta.obs_keys),
            "cameras": tuple(meta.cameras),
            "image_size": tuple(meta.image_size),
            "action_arms": tuple(meta.action_arms),
            "gripper_arms": tuple(meta.gripper_arms),
        }
    )
    if task is not None and task != meta.task:
        raise ConfigError(
            f"checkpoint {path} was trained on task {meta.task!r}, but task {task!r} was asked "
            f"for; train a policy on a {task!r} dataset or evaluate on task={meta.task}"
        )
    cfg = PolicyConfig(**blob["policy"])
    sd = blob["state_dict"]
    policy = ChunkPolicy(
        cfg,
        sd["obs_mean"].numpy(),
        sd["obs_std"].numpy(),
        sd["act_mean"].numpy(),
        sd["act_std"].numpy(),
        meta.cameras,
        sd["rel_index"].numpy(),
    )
    policy.load_state_dict(sd)
    policy.eval()
    return policy, meta
