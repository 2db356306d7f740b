"""Safety layer: clamps, rejections, e-stop latch, watchdog, and a property test over any
command sequence (NaN, inf, huge values, e-stops, resets, time passing)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.bridge.protocol import Capabilities, observation_features
from sim.bridge.safety import SafetyConfig, SafetyLayer
from sim.errors import BridgeError, ConfigError, SafetyError

LOWER = np.array([-1.0, -0.5, -2.0, 0.0])
UPPER = np.array([1.0, 1.5, 2.0, 1.0])
BOX_LO = np.array([-0.06, 0.1, 0.45])
BOX_HI = np.array([0.06, 0.4, 0.6])


def fk(q: np.ndarray) -> dict[str, np.ndarray]:
    """A nonlinear toy FK; q = 0 maps to (0, 0.3, 0.5), inside the box."""
    return {
        "right": np.array(
            [
                0.3 * np.sin(q[0]) + 0.1 * q[1],
                0.3 * np.cos(q[0]) * np.cos(q[1]),
                0.5 + 0.2 * np.sin(q[2]),
            ]
        )
    }


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class RecordingDriver:
    """Perfectly tracking position robot that logs every command it receives."""

    def __init__(self) -> None:
        self.caps = Capabilities(
            robot="fake",
            driver="fake",
            joint_names=["a", "b", "c"],
            action_names=["a", "b", "c", "right_gripper"],
            arms=["right"],
            fps_max=100,
            control_dt=0.02,
            lower=LOWER.tolist(),
            upper=UPPER.tolist(),
        )
        self.q = np.zeros(4)
        self.log: list[tuple[np.ndarray, bool]] = []
        self.latched = False  # the test's own model of the e-stop state

    capabilities = property(lambda self: self.caps)
    observation_features = property(lambda self: observation_features(self.caps))
    action_features = property(lambda self: {"action": (4,)})

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def get_observation(self):
        return {"qpos": self.q[:3].copy(), "qvel": np.zeros(3), "gripper.right": self.q[3]}

    def send_action(self, action):
        a = np.asarray(action, dtype=float)
        self.log.append((a.copy(), self.latched))
        self.q = a.copy()
        return a


def make(cfg: SafetyConfig | None = None, with_fk: bool = True):
    drv, clock = RecordingDriver(), FakeClock()
    cfg = cfg or SafetyConfig(
        max_step=0.1,
        gripper_max_step=0.3,
        max_velocity=3.0,
        workspace_lo=tuple(BOX_LO),
        workspace_hi=tuple(BOX_HI),
        watchdog_s=0.2,
        hold_mode="current",
    )
    layer = SafetyLayer(drv, cfg, fk=fk if with_fk else None, clock=clock)
    layer.connect()
    return layer, drv, clock


def test_clamps_limits_and_step_and_counts():
    layer, drv, _ = make(SafetyConfig(max_step=0.1, max_velocity=None, watchdog_s=None))
    sent = layer.send_action(np.array([5.0, -5.0, 0.05, 2.0]))
    np.testing.assert_allclose(sent, [0.1, -0.1, 0.05, 0.25])  # step 0.1, gripper step 0.25
    assert layer.stats.clamped_limits == 1 and layer.stats.clamped_step == 1
    for _ in range(30):
        sent = layer.send_action(np.array([5.0, -5.0, 0.05, 2.0]))
    np.testing.assert_allclose(sent, [1.0, -0.5, 0.05, 1.0])  # converged onto the limits


def test_velocity_limit_sets_step_from_dt():
    layer, _, _ = make(SafetyConfig(max_step=1.0, max_velocity=2.0, dt=0.01, watchdog_s=None))
    sent = layer.send_action(np.array([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(sent[:3], [0.02, 0.02, 0.02])  # 2 rad/s * 10 ms


def test_nan_and_inf_rejected_with_hold_and_message():
    layer, drv, _ = make()
    layer.send_action(np.array([0.05, 0, 0, 0.5]))
    n = len(drv.log)
    with pytest.raises(
        SafetyError,
        match=r"command rejected: NaN/inf in \['b', 'right_gripper'\]; "
        "holding position",
    ):
        layer.send_action(np.array([0.0, np.nan, 0.0, np.inf]))
    assert len(drv.log) == n + 1  # exactly the hold command
    np.testing.assert_allclose(drv.log[-1][0], drv.log[-2][0])  # perfect tracking: hold = stay
    assert layer.stats.rejected_nonfinite == 1 and layer.holding
    assert "NaN/inf" in layer.stats.last_hold["reason"]


def test_wrong_shape_rejected():
    layer, _, _ = make()
    with pytest.raises(SafetyError, match=r"action must have shape \(4,\)"):
        layer.send_action(np.zeros(3))
    with pytest.raises(SafetyError, match=r"missing keys \['right_gripper'\]"):
        layer.send_action({"a": 0.0, "b": 0.0, "c": 0.0})
    assert layer.stats.rejected_invalid == 2


def test_estop_latches_until_reset():
    layer, drv, _ = make()
    layer.estop("operator")
    n = len(drv.log)
    for _ in range(3):
        with pytest.raises(
            SafetyError,
            match=r"e-stop latched \(operator\); command rejected "
            "until reset_estop",
        ):
            layer.send_action(np.zeros(4))
    assert len(drv.log) == n and layer.stats.rejected_estop == 3
    layer.reset_estop()
    layer.send_action(np.zeros(4))
    assert len(drv.log) == n + 1 and layer.stats.resets == 1


def test_watchdog_holds_once_after_deadline():
    layer, drv, clock = make()
    layer.send_action(np.array([0.05, 0, 0, 0]))
    clock.t += 0.1
    assert not layer.check_watchdog()
    clock.t += 0.15
    assert layer.check_watchdog()
    assert not layer.check_watchdog()  # already holding: once per silence
    assert layer.stats.watchdog_holds == 1
    assert layer.stats.last_hold["reason"].startswith("watchdog: no command for 250 ms")
    assert layer.stats.watchdog_latency_s[-1] == pytest.approx(0.25)


def test_workspace_box_shortens_motion():
    layer, drv, _ = make(
        SafetyConfig(
            max_step=10,
            max_velocity=None,
            watchdog_s=None,
            workspace_lo=tuple(BOX_LO),
            workspace_hi=tuple(BOX_HI),
        )
    )
    sent = layer.send_action(np.array([1.0, 0.0, 0.0, 0.0]))  # x = 0.3 sin(1) = 0.25 > 0.06
    x = fk(sent)["right"][0]
    assert 0.055 < x <= 0.06 and layer.stats.clamped_workspace == 1


def test_workspace_needs_fk_and_config_errors_name_keys():
    with pytest.raises(ConfigError, match="workspace box given but no fk"):
        SafetyLayer(RecordingDriver(), SafetyConfig(workspace_lo=(0, 0, 0), workspace_hi=(1, 1, 1)))
    from sim.cli.bridge import build

    with pytest.raises(ConfigError, match=r"safety: unknown key 'max_stepp'"):
        build(SafetyConfig, {"max_stepp": 1}, "safety")
    with pytest.raises(ConfigError, match="hold_mode must be 'current' or 'last'"):
        SafetyConfig(hold_mode="freeze")


def test_reset_driver_requires_simulated_driver():
    layer, _, _ = make()
    with pytest.raises(BridgeError, match="driver 'fake' cannot reset"):
        layer.reset_driver(seed=1)


# ------------------------------------------------------------------------------ property test
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-3, max_value=3),
    st.sampled_from([1e300, -1e300, 0.0, np.nan, np.inf, -np.inf]),
)
ops = st.one_of(
    st.tuples(st.just("send"), st.lists(values, min_size=4, max_size=4)),
    st.tuples(st.just("send"), st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4)),
    st.tuples(st.just("estop"), st.none()),
    st.tuples(st.just("reset"), st.none()),
    st.tuples(st.just("tick"), st.floats(0.0, 0.5)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=40))
def test_property_nothing_unsafe_reaches_the_driver(seq):
    layer, drv, clock = make()
    step = np.minimum(np.array([0.1, 0.1, 0.1, 0.3]), [3.0 * 0.02] * 3 + [np.inf])
    for op, arg in seq:
        if op == "send":
            a = np.array(arg, dtype=float)
            bad = not np.all(np.isfinite(a))
            try:
                layer.send_action(a)
                assert not bad and not drv.latched
            except SafetyError:
                assert bad or drv.latched
        elif op == "estop":
            layer.estop("test")
            drv.latched = True
        elif op == "reset":
            layer.reset_estop()
            drv.latched = False
        else:
            clock.t += arg
            layer.check_watchdog()
    prev = np.zeros(4)
    for cmd, estopped in drv.log:
        assert not estopped, "a command reached the driver while the e-stop was latched"
        assert np.all(np.isfinite(cmd))
        assert np.all(cmd >= LOWER) and np.all(cmd <= UPPER)
        assert np.all(np.abs(cmd - prev) <= step + 1e-12), (cmd, prev)
        p = fk(cmd)["right"]
        assert np.all(p >= BOX_LO - 1e-12) and np.all(p <= BOX_HI + 1e-12), p
        prev = cmd
