"""robomimic / MimicGen HDF5 writer and reader (FORMATS.md §2.1-2.2).

Written layout (per demo ``data/demo_<i>``, ``i`` = 0..n-1 in input order)::

    data/@total, @env_args (JSON: env_name, env_version, type, env_kwargs)
    data/demo_<i>/@num_samples         T
    data/demo_<i>/@model_file          MJCF XML (when given)
    data/demo_<i>/@demoforge           JSON: EpisodeMeta, joint/action names, arm -> robot index,
                                       objects, cameras, subtasks, which optional fields exist
    states   (T, n+n | n | 0)          robot qpos ++ qvel (robot-only, not a full MuJoCo state)
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
    datagen_info/  (attrs env_interface_name, env_interface_type)
        eef_pose (T,4,4)  first arm;  target_pose (T,4,4) = next step's eef_pose (last repeated)
        object_poses/<obj> (T,4,4);  subtask_term_signals/<sig> (T,) 0/1
        gripper_action (T, g) robosuite convention (-1 open, +1 close) = 1 - 2 * opening
    mask/train, mask/valid    demo names as bytes ('S')

Reading a file we wrote restores every Episode field exactly (quaternions back to w, x, y, z;
``meta.provenance`` goes through JSON, so tuples come back as lists and numpy values as numbers).
Foreign robomimic/MimicGen files: demos sorted by integer index; EE from
``datagen_info/eef_pose`` when present (else ``obs/robot<k>_eef_pos|quat``); objects from
``datagen_info/object_poses``; subtasks from ``subtask_term_signals``; gripper opening from
``datagen_info/gripper_action`` (else ``actions[:, -1]``) as ``(1 - a) / 2``; images from
``obs/*_image``; joints from ``obs/robot<k>_joint_pos|vel``; fps from ``env_kwargs.control_freq``
(default 20). Arms are ``"main"`` for a single robot prefix, else the prefix (``robot0`` ...).
"""

from sim.io.robomimic.reader import read_robomimic
from sim.io.robomimic.writer import FORMAT_VERSION, ROBOSUITE_TYPE, write_robomimic

__all__ = ["FORMAT_VERSION", "ROBOSUITE_TYPE", "read_robomimic", "write_robomimic"]
