"""Controller commands -> absolute EE targets: robosuite OSC_POSE / OSC_POSITION.

robosuite's operational-space controller (``controllers/osc.py``) takes per step an arm action
``a`` (6-d for OSC_POSE: position + axis-angle; 3-d for OSC_POSITION), clips it to
``[input_min, input_max]`` and scales it affinely onto ``[output_min, output_max]``::

    scaled = (clip(a) - (input_max + input_min) / 2) * (output_max - output_min)
             / (input_max - input_min) + (output_max + output_min) / 2

(robosuite defaults: input +-1, output +-0.05 m for position, +-0.5 rad for rotation). With
``control_delta`` true (the default) the goal is relative to the EE pose measured at that step::

    goal_pos = ee_pos + R_ref @ scaled[:3]
    goal_rot = Rot(axis_angle = R_ref @ scaled[3:6]) @ ee_rot        (OSC_POSE)
    goal_rot = ee_rot at the first step, held                         (OSC_POSITION)

and otherwise absolute (``goal_pos = p_ref + R_ref @ scaled[:3]``, ``goal_rot = R_ref @
Rot(scaled[3:6])``). ``R_ref``/``p_ref`` is the input reference frame: the world frame
(robosuite <= 1.4) or the robot base (``input_ref_frame: "base"``, robosuite 1.5). Every pose is
position [m] + quaternion w,x,y,z in the world frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import FormatError
from sim.transforms import mat_to_quat, quat_to_mat

#: Controller types this module converts, and their arm-action widths.
OSC_TYPES = {"OSC_POSE": 6, "OSC_POSITION": 3}
#: Arm-action widths of other robosuite controllers (``None``: one per arm joint).
CONTROL_DIMS: dict[str, int | None] = {
    **OSC_TYPES,
    "IK_POSE": 6,
    "JOINT_VELOCITY": None,
    "JOINT_POSITION": None,
    "JOINT_TORQUE": None,
}
_DEFAULT_OUT = {"OSC_POSE": [0.05] * 3 + [0.5] * 3, "OSC_POSITION": [0.05] * 3}


@dataclass(frozen=True)
class OscScaling:
    """The affine action scaling of one robosuite OSC controller.

    Attributes:
        type: "OSC_POSE" or "OSC_POSITION".
        input_min, input_max, output_min, output_max: (k,) limits (k = 6 or 3).
        delta: ``control_delta`` (goals relative to the current EE pose).
        ref_frame: "world" or "base".
    """

    type: str
    input_min: np.ndarray
    input_max: np.ndarray
    output_min: np.ndarray
    output_max: np.ndarray
    delta: bool = True
    ref_frame: str = "world"

    def scale(self, action: np.ndarray) -> np.ndarray:
        """(T, k) actions -> (T, k) scaled commands [m, rad]."""
        a = np.clip(np.asarray(action, dtype=np.float64), self.input_min, self.input_max)
        in_mean = (self.input_max + self.input_min) / 2.0
        out_mean = (self.output_max + self.output_min) / 2.0
        ratio = (self.output_max - self.output_min) / (self.input_max - self.input_min)
        return (a - in_mean) * ratio + out_mean


def _vec(where: str, cfg: Mapping[str, Any], key: str, default: Any, k: int) -> np.ndarray:
    value = cfg.get(key, default)
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (k,)).copy()
    except (TypeError, ValueError) as e:
        raise FormatError(
            f"{where}: controller '{key}' is {value!r}; expected a number or {k} numbers"
        ) from e
    return arr


def osc_scaling(cfg: Mapping[str, Any], where: str = "controller_configs") -> OscScaling:
    """Scaling of a robosuite controller config dict (``type``, ``input_max`` ...).

    Raises:
        FormatError: not an OSC type, or limits of the wrong length / zero input range.
    """
    ctype = str(cfg.get("type", ""))
    if ctype not in OSC_TYPES:
        raise FormatError(f"{where}: controller type {ctype!r}; expected one of {list(OSC_TYPES)}")
    k = OSC_TYPES[ctype]
    s = OscScaling(
        type=ctype,
        input_min=_vec(where, cfg, "input_min", -1.0, k),
        input_max=_vec(where, cfg, "input_max", 1.0, k),
        output_min=_vec(where, cfg, "output_min", [-v for v in _DEFAULT_OUT[ctype]], k),
        output_max=_vec(where, cfg, "output_max", _DEFAULT_OUT[ctype], k),
        delta=bool(cfg.get("control_delta", True)),
        ref_frame=str(cfg.get("input_ref_frame", "world")),
    )
    if np.any(s.input_max <= s.input_min):
        raise FormatError(f"{where}: controller input_max must exceed input_min")
    if s.ref_frame not in ("world", "base"):
        raise FormatError(
            f"{where}: controller input_ref_frame {s.ref_frame!r}; expected 'world' or 'base'"
        )
    return s


def _axis_angle_to_mat(r: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(r).as_matrix()


def osc_targets(
    scaling: OscScaling,
    action: np.ndarray,
    ee: np.ndarray,
    ref: np.ndarray | None = None,
) -> np.ndarray:
    """Absolute EE goals (T, 7) of an OSC arm action stream (see module docstring).

    Args:
        scaling: the controller's scaling (:func:`osc_scaling`).
        action: (T, k) arm actions as recorded (without the gripper column).
        ee: (T, 7) EE pose measured at each step (before the action), world frame.
        ref: (T, 7) or (7,) pose of the input reference frame (robot base) when
            ``scaling.ref_frame == "base"``; ignored for "world".

    Returns:
        (T, 7) goal pose per step: position [m] + quaternion w,x,y,z, world frame.
    """
    a = scaling.scale(action)
    ee = np.asarray(ee, dtype=np.float64)
    T = len(ee)
    if a.shape != (T, OSC_TYPES[scaling.type]):
        raise FormatError(
            f"OSC actions have shape {a.shape}; expected ({T}, {OSC_TYPES[scaling.type]})"
        )
    if scaling.ref_frame == "base" and ref is not None:
        ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), (T, 7))
        r_ref, p_ref = quat_to_mat(ref[:, 3:]), ref[:, :3]
    else:
        r_ref, p_ref = np.tile(np.eye(3), (T, 1, 1)), np.zeros((T, 3))
    r_ee = quat_to_mat(ee[:, 3:])
    dp = np.einsum("tij,tj->ti", r_ref, a[:, :3])
    if scaling.delta:
        pos = ee[:, :3] + dp
    else:
        pos = p_ref + dp
    if scaling.type == "OSC_POSE":
        rv = np.einsum("tij,tj->ti", r_ref, a[:, 3:6])
        if scaling.delta:
            rot = _axis_angle_to_mat(rv) @ r_ee
        else:
            rot = r_ref @ _axis_angle_to_mat(a[:, 3:6])
    else:
        rot = np.repeat(r_ee[:1], T, axis=0)
    return np.concatenate([pos, mat_to_quat(rot)], axis=1)
