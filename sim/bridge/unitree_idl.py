"""``unitree_hg`` IDL types for Cyclone DDS (same names and layout as unitree_sdk2py).

This module deliberately does NOT use ``from __future__ import annotations``: cyclonedds reads
the field annotations at runtime to build the wire type, and string annotations referring to
``types.uint8`` etc. would not resolve. Import it only when cyclonedds is installed (see
:mod:`sim.bridge.unitree_dds`, which guards the import).
"""

from dataclasses import dataclass

from cyclonedds.idl import IdlStruct, types
from cyclonedds.idl import annotations as annotate


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorCmd_(IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):  # noqa: N801
    """One motor command: mode (1 enable), q [rad], dq [rad/s], tau [N m], kp, kd."""

    mode: types.uint8
    q: types.float32
    dq: types.float32
    tau: types.float32
    kp: types.float32
    kd: types.float32
    reserve: types.uint32


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowCmd_(IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):  # noqa: N801
    """``rt/lowcmd``: 35 motor commands + CRC."""

    mode_pr: types.uint8
    mode_machine: types.uint8
    motor_cmd: types.array[MotorCmd_, 35]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32


@dataclass
@annotate.final
@annotate.autoid("sequential")
class IMUState_(IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):  # noqa: N801
    """Torso IMU: quaternion (w, x, y, z), gyro [rad/s], accel [m/s^2], rpy [rad]."""

    quaternion: types.array[types.float32, 4]
    gyroscope: types.array[types.float32, 3]
    accelerometer: types.array[types.float32, 3]
    rpy: types.array[types.float32, 3]
    temperature: types.int16


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorState_(IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):  # noqa: N801
    """One motor's state: q [rad], dq [rad/s], ddq, tau_est [N m], temperatures, voltage."""

    mode: types.uint8
    q: types.float32
    dq: types.float32
    ddq: types.float32
    tau_est: types.float32
    temperature: types.array[types.int16, 2]
    vol: types.float32
    sensor: types.array[types.uint32, 2]
    motorstate: types.uint32
    reserve: types.array[types.uint32, 4]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowState_(IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):  # noqa: N801
    """``rt/lowstate``: IMU + 35 motor states + CRC."""

    version: types.array[types.uint32, 2]
    mode_pr: types.uint8
    mode_machine: types.uint8
    tick: types.uint32
    imu_state: IMUState_
    motor_state: types.array[MotorState_, 35]
    wireless_remote: types.array[types.uint8, 40]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32
