"""LeRobot datasets: a v3.0 writer and a v2.x/v3.0 reader for :class:`~sim.episode.Episode`.

Layout written (LeRobot ``codebase_version`` "v3.0", see ../shared/FORMATS.md §1)::

    <root>/meta/info.json                       fps, features, totals, path templates, "demoforge"
    <root>/meta/stats.json                      min/max/mean/std/count/q01..q99 per feature
    <root>/meta/tasks.parquet                   pandas, index "task", column "task_index"
    <root>/meta/episodes/chunk-000/file-000.parquet   one row per episode (+ videos/*, stats/*)
    <root>/meta/demoforge/episodes.jsonl        full EpisodeMeta per episode (provenance, seed, ...)
    <root>/meta/demoforge/dataset.json          copy of info.json["demoforge"]
    <root>/meta/demoforge/model.xml             scene MJCF (when given): reset to any step
    <root>/meta/<files>                         files staged with stage_file (report, plots)
    <root>/data/chunk-000/file-000.parquet      one row per frame, one row group per episode
    <root>/videos/observation.images.<cam>/chunk-000/file-000.mp4   all episodes, concatenated

Feature mapping (Episode -> LeRobot feature, all float32 unless noted):

* ``observation.state`` (n + g,): ``qpos`` (names = ``joint_names``) followed by the gripper
  openings in [0, 1] of each arm in ``Episode.gripper`` order (names ``<arm>_gripper``).
* ``observation.velocity`` (n,): ``qvel``, names = ``joint_names``.
* ``action`` (m,): ``action``, names = ``action_names``.
* ``observation.ee_pose.<arm>`` (7,): EE pose in the world frame, names x, y, z, qw, qx, qy, qz
  (position [m], quaternion w, x, y, z).
* ``observation.environment_state`` (7k,): object poses concatenated in ``Episode.objects``
  order, names ``<obj>.x`` ... ``<obj>.qz``.
* ``observation.subtask.<name>`` float32 0.0/1.0: per-step subtask signal (LeRobot normalizes
  every ``observation.*`` input, and cannot subtract bools; older datasets stored bool).
* ``next.done`` bool (True on the last frame), ``next.success`` bool (True on the last frame of
  an episode whose ``meta.success`` is True).
* ``observation.images.<cam>`` video: H.264 mp4, yuv420p, constant frame rate, frame k of an
  episode at pts ``from_timestamp + k / fps`` exactly; a fixed encoder thread count, so the bytes
  do not depend on the machine's CPU count.

Schema 1.1 (present when the episodes have them):

* ``target.ee_pose.<arm>`` (7,): commanded EE target, x, y, z, qw, qx, qy, qz, world frame.
* ``target.gripper.<arm>`` (1,): commanded gripper opening [0, 1].
* ``observation.segment.<arm>`` / ``observation.segment_ref.<arm>`` int64: ids into the label
  tables ``info.json["demoforge"]["labels"]["segment" | "segment_ref"]`` (first-seen order).
* ``observation.mujoco_state`` (k,) **float64**: full MuJoCo state per step (``mj_getState`` with
  ``layout.state_spec``); our reader returns it exactly (lerobot's loader casts to float32).
* ``layout.arm_joints`` (arm -> joint names) and ``layout.state_spec`` in the demoforge block.
* Provenance (source episode, segments, transforms, randomization, seeds, software version,
  config hash) is ``EpisodeMeta.provenance`` in ``meta/demoforge/episodes.jsonl``.

Integrity: ``info.json["demoforge_integrity"]`` holds the SHA-256 of every file and of info.json
itself; the reader checks metadata files on open, a data parquet before reading it and an mp4
before decoding it, so a truncated or bit-flipped file raises a FormatError naming it. Tools
that rewrite info.json (lerobot drops unknown keys) remove the block and with it the check.

``timestamp`` is ``frame_index / fps``: the writer requires ``Episode.time`` to be that (within
1e-4 s) and the reader returns exactly ``arange(T) / fps``.

Writing is atomic and resumable (the :class:`~sim.io.writer.Writer` protocol):
:class:`LeRobotWriter` stages each added episode (a parquet, one mp4 per camera and a JSON commit
marker) in ``<root>.partial/episodes/`` and extra files (``stage_file``: report, plots) in
``<root>.partial/files/``; :meth:`finalize` builds the v3.0 layout with those files in
``<root>.partial/dataset/`` (about the dataset size again in free space, checked first), writes
``meta/info.json`` last and renames the directory to ``<root>``. A crash before the rename leaves
``<root>`` absent and everything resumable; a crash after it is recognized on resume.

Reading: :func:`read_lerobot` / :func:`iter_lerobot` (v2.0, v2.1 and v3.0, detected from
``codebase_version``) give Episodes with lazy images; :func:`read_lerobot_info` and
:func:`read_lerobot_columns` give the raw named columns (e.g. to map a foreign robot's joints);
:func:`is_lerobot` detects a dataset directory. A 1-wide vector (e.g. a lone gripper as
``observation.state``) has shape (1,), which LeRobot stores as a scalar column.
"""

from sim.io.lerobot.features import (
    ACTION,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    DEMOFORGE_DATASET_PATH,
    DEMOFORGE_EPISODES_PATH,
    DONE,
    EE_PREFIX,
    ENV_STATE,
    EPISODES_PATH,
    IMAGE_PREFIX,
    INTEGRITY_KEY,
    POSE_NAMES,
    READABLE_VERSIONS,
    STATE,
    SUBTASK_PREFIX,
    SUCCESS,
    TIMESTAMP_TOL_S,
    VELOCITY,
    VIDEO_PATH,
)
from sim.io.lerobot.info import LeRobotEpisodeRef, LeRobotInfo, is_lerobot, read_lerobot_info
from sim.io.lerobot.reader import ParquetImages, iter_lerobot, read_lerobot, read_lerobot_columns
from sim.io.lerobot.stats import QUANTILES
from sim.io.lerobot.video import VideoClip, VideoOptions, decode_frames
from sim.io.lerobot.writer import LeRobotWriter, write_lerobot

__all__ = [
    "ACTION",
    "CODEBASE_VERSION",
    "DATA_PATH",
    "DEFAULT_FEATURES",
    "DEMOFORGE_DATASET_PATH",
    "DEMOFORGE_EPISODES_PATH",
    "DONE",
    "EE_PREFIX",
    "ENV_STATE",
    "EPISODES_PATH",
    "IMAGE_PREFIX",
    "INTEGRITY_KEY",
    "POSE_NAMES",
    "QUANTILES",
    "READABLE_VERSIONS",
    "STATE",
    "SUBTASK_PREFIX",
    "SUCCESS",
    "TIMESTAMP_TOL_S",
    "VELOCITY",
    "VIDEO_PATH",
    "LeRobotEpisodeRef",
    "LeRobotInfo",
    "LeRobotWriter",
    "ParquetImages",
    "VideoClip",
    "VideoOptions",
    "decode_frames",
    "is_lerobot",
    "iter_lerobot",
    "read_lerobot",
    "read_lerobot_columns",
    "read_lerobot_info",
    "write_lerobot",
]
