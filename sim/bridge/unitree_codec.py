"""Unitree ``unitree_hg`` LowCmd_/LowState_ codec: C layouts and the SDK's CRC-32.

The message is packed little-endian in its C layout (LowCmd_ ``<2B2x`` + ``B3x5fI`` x 35 +
``5I`` = 1004 bytes; LowState_ ``<2I2B2xI`` + ``13fh2x`` + ``B3x4f2hf7I`` x 35 + ``40B5I`` = 2092
bytes), viewed as uint32 words, and every word but the last (the crc itself) is fed MSB-first
into CRC-32 with polynomial 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR
(:func:`crc32_core_reference` is that loop; :func:`crc32_core` the same via zlib). Pure numpy:
works without cyclonedds (FORMATS §3.4).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

TOPIC_LOWCMD = "rt/lowcmd"
TOPIC_LOWSTATE = "rt/lowstate"
NUM_MOTORS = 35
LOWCMD_STRUCT = "<2B2x" + "B3x5fI" * NUM_MOTORS + "5I"
LOWSTATE_STRUCT = "<2I2B2xI" + "13fh2x" + "B3x4f2hf7I" * NUM_MOTORS + "40B5I"

# C layouts as numpy structured dtypes (identical bytes to the struct formats above).
MOTOR_CMD_DTYPE = np.dtype(
    [
        ("mode", "u1"),
        ("_pad", "V3"),
        ("q", "<f4"),
        ("dq", "<f4"),
        ("tau", "<f4"),
        ("kp", "<f4"),
        ("kd", "<f4"),
        ("reserve", "<u4"),
    ]
)
LOWCMD_DTYPE = np.dtype(
    [
        ("mode_pr", "u1"),
        ("mode_machine", "u1"),
        ("_pad", "V2"),
        ("motor_cmd", MOTOR_CMD_DTYPE, (NUM_MOTORS,)),
        ("reserve", "<u4", (4,)),
        ("crc", "<u4"),
    ]
)
IMU_DTYPE = np.dtype(
    [
        ("quaternion", "<f4", (4,)),
        ("gyroscope", "<f4", (3,)),
        ("accelerometer", "<f4", (3,)),
        ("rpy", "<f4", (3,)),
        ("temperature", "<i2"),
        ("_pad", "V2"),
    ]
)
MOTOR_STATE_DTYPE = np.dtype(
    [
        ("mode", "u1"),
        ("_pad", "V3"),
        ("q", "<f4"),
        ("dq", "<f4"),
        ("ddq", "<f4"),
        ("tau_est", "<f4"),
        ("temperature", "<i2", (2,)),
        ("vol", "<f4"),
        ("sensor", "<u4", (2,)),
        ("motorstate", "<u4"),
        ("reserve", "<u4", (4,)),
    ]
)
LOWSTATE_DTYPE = np.dtype(
    [
        ("version", "<u4", (2,)),
        ("mode_pr", "u1"),
        ("mode_machine", "u1"),
        ("_pad", "V2"),
        ("tick", "<u4"),
        ("imu_state", IMU_DTYPE),
        ("motor_state", MOTOR_STATE_DTYPE, (NUM_MOTORS,)),
        ("wireless_remote", "u1", (40,)),
        ("reserve", "<u4", (4,)),
        ("crc", "<u4"),
    ]
)
assert LOWCMD_DTYPE.itemsize == 1004 and LOWSTATE_DTYPE.itemsize == 2092

CRC_POLY = 0x04C11DB7


def crc32_core_reference(words: Sequence[int] | np.ndarray) -> int:
    """Unitree's CRC loop over uint32 words, bit by bit (MSB first); slow, for checking."""
    crc = 0xFFFFFFFF
    for word in np.asarray(words, dtype=np.uint32).tolist():
        bit = 1 << 31
        for _ in range(32):
            crc = ((crc << 1) & 0xFFFFFFFF) ^ (CRC_POLY if crc & 0x80000000 else 0)
            if word & bit:
                crc ^= CRC_POLY
            bit >>= 1
    return crc


_BITREV8 = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8)


def _bitrev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def crc32_core(words: Sequence[int] | np.ndarray) -> int:
    """Same result as :func:`crc32_core_reference`, computed with zlib (fast).

    Feeding words MSB-first is the non-reflected CRC over their big-endian bytes; zlib's
    reflected CRC-32 over bit-reversed bytes equals the bit-reversed non-reflected CRC, and zlib's
    final XOR is undone.
    """
    data = np.asarray(words, dtype=">u4").tobytes()
    rev = _BITREV8[np.frombuffer(data, dtype=np.uint8)].tobytes()
    return _bitrev32(zlib.crc32(rev)) ^ 0xFFFFFFFF


def _fill(arr: np.ndarray, msg: Any, dtype: np.dtype) -> None:
    for name in dtype.names or ():
        if name.startswith("_"):
            continue
        value = getattr(msg, name)
        sub = dtype.fields[name][0]
        if sub.base.names:  # nested struct or array of structs
            if sub.shape:
                for i, item in enumerate(value):
                    _fill(arr[name][i], item, sub.base)
            else:
                _fill(arr[name], value, sub.base)
        else:
            if isinstance(value, (bytes, bytearray)):  # cyclonedds gives uint8 arrays as bytes
                value = np.frombuffer(value, dtype=np.uint8)
            arr[name] = value


def pack(msg: Any, dtype: np.dtype) -> bytes:
    """Pack a LowCmd_/LowState_-shaped object (attribute access) into its C layout bytes."""
    arr = np.zeros((), dtype=dtype)
    _fill(arr, msg, dtype)
    return arr.tobytes()


def message_crc(msg: Any, dtype: np.dtype = LOWCMD_DTYPE) -> int:
    """The Unitree CRC of a message: CRC over all C-layout words except the last."""
    words = np.frombuffer(pack(msg, dtype), dtype="<u4")
    return crc32_core(words[:-1])
