"""robomimic / MimicGen HDF5 writer and reader (FORMATS.md §2.1-2.2).

Dataset layout written by :class:`RobomimicWriter` (the output of ``format=robomimic``)::

    <out>/demo.hdf5                    the robomimic/MimicGen file (below)
    <out>/meta/demoforge.json          format/schema version, env_args, config, episode schema
    <out>/meta/<files>                 files staged with stage_file (generation report, plots)

``write_robomimic(..., "x.hdf5")`` writes only the file. Per demo ``data/demo_<i>``, ``i`` =
0..n-1 in add order::

    data/@total, @env_args (JSON: env_name, env_version, type, env_kwargs), @demoforge (JSON)
    data/demo_<i>/@num_samples         T
    data/demo_<i>/@model_file          MJCF XML of the scene (when given): reset to any step with
                                       MjModel.from_xml_string + mj_setState(states[t])
    data/demo_<i>/@demoforge           JSON: EpisodeMeta (with provenance), joint/action names,
                                       arm -> robot index, objects, cameras, subtasks, schema 1.1
                                       field names, arm_joints, state_spec, which fields exist
    data/demo_<i>/@demoforge_sha256    digest of @demoforge (and @model_file's inside it)
    states   (T, k)                    full MuJoCo state (mj_getState, spec in
                                       states@mujoco_state_spec) when Episode.state is set;
                                       else robot qpos ++ qvel (format version 1)
    actions  (T, m)                    Episode.action as is (names in @demoforge)
    rewards  (T,)  1.0 at the last step when meta.success, else 0
    dones    (T,)  int, 1 at the last step (robomimic done_mode 1)
    obs/timestamp              (T,)    Episode.time [s]
    obs/robot0_joint_pos|vel   (T, n)  qpos / qvel
    obs/robot<k>_eef_pos       (T, 3)  EE position of arm k [m], world frame
    obs/robot<k>_eef_quat      (T, 4)  EE orientation, **x, y, z, w** (robomimic order)
    obs/robot<k>_gripper_opening (T, 1) opening in [0, 1]
    obs/<obj>_pos, obs/<obj>_quat      object pose (quat x, y, z, w); obs/object = all of them
    obs/<cam>_image            (T, H, W, 3) uint8
    next_obs/<k>               obs/<k> one step later (last repeated), as robomimic's
                               dataset_states_to_obs writes it (next_obs=False to skip)
    demoforge/target/<arm>     (T, 7)  commanded EE target, pos + quat **w, x, y, z**
    demoforge/gripper_cmd/<arm> (T,)   commanded opening [0, 1]
    demoforge/segment/<arm>, demoforge/segment_ref/<arm>  (T,) int32 ids; @labels = JSON table
    datagen_info/  (attrs env_interface_name, env_interface_type, arms = JSON arm order)
        eef_pose, target_pose (T,4,4)  first arm (MimicGen's single-arm keys); target_pose =
                                       Episode.target when present, else next step's eef_pose
        arms/<arm>/eef_pose|target_pose (T,4,4), arms/<arm>/gripper_action (T,1): every arm
        object_poses/<obj> (T,4,4);  subtask_term_signals/<sig> (T,) 0/1
        gripper_action (T, g) robosuite convention (-1 open, +1 close) = 1 - 2 * opening
                                       (gripper_cmd per arm when present)
    mask/train, mask/valid    demo names as bytes ('S')

The file uses HDF5's checksummed metadata (libver v110+) and Fletcher-32 on every dataset, so
truncation and bit flips fail on read with a FormatError naming the file.

Reading a file we wrote restores every Episode field exactly (quaternions back to w, x, y, z;
``meta.provenance`` goes through JSON, so tuples come back as lists and numpy values as numbers).
Files of format version 1 (schema 1.0) still read. Foreign robomimic/MimicGen files: demos
sorted by integer index; EE from
``datagen_info/eef_pose`` when present (else ``obs/robot<k>_eef_pos|quat``); objects from
``datagen_info/object_poses``; subtasks from ``subtask_term_signals``; gripper opening from
``datagen_info/gripper_action`` (else ``actions[:, -1]``) as ``(1 - a) / 2``; images from
``obs/*_image``; joints from ``obs/robot<k>_joint_pos|vel``; fps from ``env_kwargs.control_freq``
(default 20). Arms are ``"main"`` for a single robot prefix, else the prefix (``robot0`` ...).
"""

from sim.io.robomimic.reader import read_robomimic
from sim.io.robomimic.writer import (
    DEMOFORGE_ENV_TYPE,
    FORMAT_VERSION,
    HDF5_NAME,
    ROBOSUITE_TYPE,
    RobomimicWriter,
    write_robomimic,
)

__all__ = [
    "DEMOFORGE_ENV_TYPE",
    "FORMAT_VERSION",
    "HDF5_NAME",
    "ROBOSUITE_TYPE",
    "RobomimicWriter",
    "read_robomimic",
    "write_robomimic",
]
