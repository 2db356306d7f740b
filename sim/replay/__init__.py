"""Replay a source episode: kinematic playback, open-loop joint targets, or EE tracking via IK.

Three modes, all returning a :class:`ReplayReport` (JSON-serializable):

- :func:`replay_kinematic` (``kinematic.py``): write mapped joint positions per step into any
  MJCF (no physics, ``mj_forward`` only) and render a video, e.g. real Unitree G1 data on the
  G1 model.
- :func:`replay_joint` (``joint.py``): send the source's joint targets to a scene's position
  servos and step physics; reports joint tracking error and task success.
- :func:`replay_ee` (``ee.py``): map the source's EE tracks onto the scene's robot (calibrated at
  the first frame, object-relative, or as-is in the world frame), follow them with IK + physics
  (:func:`sim.rollout.track`) and report EE tracking error and task success; every mapped arm
  gets its own gripper command (``gripper_cmd``, else ``<arm>_gripper``, else ``gripper``).

Rooms: ``report.py`` (ReplayReport), ``camera.py`` (free camera, video), ``mjcf.py`` (model
loading, arm length), ``source.py`` (reading the episode, joint columns, time grid),
``config.py`` (typed :class:`ReplayConfig`), ``run.py`` (:func:`run_replay`). The
``demoforge-replay`` command lives in :mod:`sim.cli.replay`.

Frames: every pose is in the scene's world frame, pos [m] + quat w,x,y,z.
"""

from __future__ import annotations

from sim.replay.camera import LOOKAT_BODIES, FreeCameraRig
from sim.replay.config import MODES, ReplayConfig
from sim.replay.ee import EE_FRAMES, ee_targets, gripper_command, replay_ee
from sim.replay.joint import replay_joint
from sim.replay.kinematic import replay_kinematic
from sim.replay.mjcf import chain_length, load_replay_model
from sim.replay.report import ReplayReport
from sim.replay.run import run_replay, summary

__all__ = [
    "EE_FRAMES",
    "LOOKAT_BODIES",
    "MODES",
    "FreeCameraRig",
    "ReplayConfig",
    "ReplayReport",
    "chain_length",
    "ee_targets",
    "gripper_command",
    "load_replay_model",
    "replay_ee",
    "replay_joint",
    "replay_kinematic",
    "run_replay",
    "summary",
]
