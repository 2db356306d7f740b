"""Unitree DDS: CRC (vectors derived from the spec), C layouts, and a loopback DDS round trip."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from sim.bridge import unitree_dds as ud
from sim.bridge.unitree_dds import (
    LOWCMD_DTYPE,
    LOWCMD_STRUCT,
    LOWSTATE_DTYPE,
    LOWSTATE_STRUCT,
    crc32_core,
    crc32_core_reference,
)
from sim.errors import ConfigError

# Derivation: feeding a 32-bit word D MSB-first into a CRC register R (poly P = x^32 + 0x04C11DB7,
# data xored into the top bit) gives ((R xor D) * x^32) mod P. With R = init = 0xFFFFFFFF:
#   D = 0xFFFFFFFF -> R xor D = 0 -> 0
#   D = 0xFFFFFFFE -> R xor D = 1 -> x^32 mod P = 0x04C11DB7
# and a second word continues from the first result: after [0xFFFFFFFE] R = 0x04C11DB7, so
# D = 0x04C11DB6 gives R xor D = 1 again -> 0x04C11DB7.
VECTORS = [
    ([], 0xFFFFFFFF),
    ([0xFFFFFFFF], 0x00000000),
    ([0xFFFFFFFE], 0x04C11DB7),
    ([0xFFFFFFFE, 0x04C11DB6], 0x04C11DB7),
    ([0xFFFFFFFF, 0x00000001], 0x04C11DB7),
    ([0xFFFFFFFF, 0x00000000], 0x00000000),
]


@pytest.mark.parametrize(("words", "crc"), VECTORS)
def test_crc_vectors_derived_from_the_spec(words, crc):
    assert crc32_core_reference(words) == crc
    assert crc32_core(words) == crc


def test_fast_crc_equals_unitree_loop_on_random_words():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 250):
        w = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
        assert crc32_core(w) == crc32_core_reference(w)


def test_c_layouts_match_the_sdk_struct_formats():
    assert struct.calcsize(LOWCMD_STRUCT) == LOWCMD_DTYPE.itemsize == 1004
    assert struct.calcsize(LOWSTATE_STRUCT) == LOWSTATE_DTYPE.itemsize == 2092
    rng = np.random.default_rng(1)
    motors = [(1, *rng.normal(size=5).astype(np.float32).tolist(), 7) for _ in range(35)]
    flat = [3, 5] + [x for m in motors for x in m] + [1, 2, 3, 4, 0xDEADBEEF]
    packed = struct.pack(LOWCMD_STRUCT, *flat)
    arr = np.zeros((), LOWCMD_DTYPE)
    arr["mode_pr"], arr["mode_machine"] = 3, 5
    for i, m in enumerate(motors):
        arr["motor_cmd"][i] = (m[0], b"\0\0\0", *m[1:])
    arr["reserve"], arr["crc"] = [1, 2, 3, 4], 0xDEADBEEF
    assert arr.tobytes() == packed
    # the CRC covers every word but the last: the crc field itself does not change it
    words = np.frombuffer(packed, "<u4")
    assert crc32_core(words[:-1]) == crc32_core(np.frombuffer(arr.tobytes(), "<u4")[:-1])


def test_joint_map_validation_and_g1_slots():
    with pytest.raises(ConfigError, match="slots must be distinct and in"):
        ud.DdsJointMap(joints={"a": 3, "b": 3})
    with pytest.raises(ConfigError, match="unmapped must be 'hold' or 'disable'"):
        ud.DdsJointMap(joints={"a": 1}, unmapped="float")
    assert ud.G1_ARM_SLOTS["left_shoulder_pitch"] == 15
    assert ud.G1_ARM_SLOTS["right_wrist_yaw"] == 28


dds = pytest.mark.skipif(not ud.HAVE_DDS, reason="cyclonedds not installed")


@dds
def test_message_crc_of_idl_objects_matches_struct_pack():
    cmd = ud.new_lowcmd()
    cmd.mode_machine = 5
    for i, m in enumerate(cmd.motor_cmd):
        m.mode, m.q, m.kp, m.kd = 1, 0.01 * i, 60.0, 1.5
    flat = [cmd.mode_pr, cmd.mode_machine]
    for m in cmd.motor_cmd:
        flat += [m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve]
    flat += [*cmd.reserve, 0]
    words = np.frombuffer(struct.pack(LOWCMD_STRUCT, *flat), "<u4")
    assert ud.message_crc(cmd, LOWCMD_DTYPE) == crc32_core_reference(words[:-1])
    st = ud.new_lowstate()
    st.tick = 1234
    assert ud.message_crc(st, LOWSTATE_DTYPE) != ud.message_crc(ud.new_lowstate(), LOWSTATE_DTYPE)


@dds
def test_twin_served_on_dds_loopback_domain_1(tmp_path):
    from sim.bridge.commands import connect_robot
    from sim.bridge.config import ServeConfig
    from sim.bridge.process import ServerProcess
    from sim.cli.bridge import hardware_from_dict

    hw = hardware_from_dict(
        dict(
            name="dds",
            driver="twin",
            transport="dds",
            robot="tiny_arm",
            fps=50,
            safety={"max_step": 0.1, "max_velocity": 4.0, "watchdog_s": 0.5},
            dds={"domain_id": 1, "interface": "lo", "connect_timeout_s": 10.0},
        )
    )
    with ServerProcess(ServeConfig(hardware=hw), dir=tmp_path):
        drv = connect_robot(hw)
        try:
            caps = drv.capabilities
            assert caps.driver == "unitree-dds" and caps.extra["domain_id"] == 1
            target = np.array([0.4, -0.2, 0.3, 1.0])
            for _ in range(60):
                drv.send_action(target)
                time.sleep(0.02)
            obs = drv.get_observation()
            np.testing.assert_allclose(obs["qpos"], target[:3], atol=0.03)
            assert obs["gripper.right"] > 0.9 and obs["ee.right"].shape == (7,)
            st = drv.last_state
            assert st.mode_machine == 5 and st.crc == ud.message_crc(st, LOWSTATE_DTYPE)
            # a command with a wrong CRC is dropped by the robot side, and counted
            from cyclonedds.pub import DataWriter
            from cyclonedds.topic import Topic

            dp = ud.participant(1, "lo", ("127.0.0.1",))
            w = DataWriter(dp, Topic(dp, ud.TOPIC_LOWCMD, ud.LowCmd_))
            bad = ud.new_lowcmd()
            for m in bad.motor_cmd:
                m.mode, m.q = 1, 1.0
            bad.crc = ud.message_crc(bad, LOWCMD_DTYPE) ^ 1
            deadline = time.monotonic() + 3.0
            while drv.last_state.reserve[0] == 0 and time.monotonic() < deadline:
                w.write(bad)
                time.sleep(0.02)
            assert drv.last_state.reserve[0] >= 1
            np.testing.assert_allclose(drv.get_observation()["qpos"], target[:3], atol=0.03)
        finally:
            drv.disconnect()
