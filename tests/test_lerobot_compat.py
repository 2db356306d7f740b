"""Our LeRobot v3.0 output loads in the real lerobot 0.6.1 (``LeRobotDataset``).

lerobot needs Python >= 3.12 and pulls torch with CUDA wheels (about 5 GB installed, about
80 s to install from a fast mirror), so it lives in its own cached venv at
``~/.cache/demoforge/lerobot-0.6.1-venv``. The test runs when that venv exists; with
``DEMOFORGE_LEROBOT_COMPAT=1`` it creates the venv first. Otherwise it is skipped with the reason.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sim.io.lerobot import write_lerobot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_io_lerobot import CAMS, FPS, make_episode  # noqa: E402

pytestmark = pytest.mark.slow

LEROBOT = "lerobot[dataset]==0.6.1"
VENV = Path.home() / ".cache" / "demoforge" / "lerobot-0.6.1-venv"
OPT_IN = "DEMOFORGE_LEROBOT_COMPAT"


def _python312() -> str | None:
    candidates = [
        shutil.which("python3.12"),
        *sorted(
            glob.glob(str(Path.home() / ".pyenv" / "versions" / "3.12*" / "bin" / "python3.12"))
        ),
    ]
    for exe in filter(None, candidates):
        ok = subprocess.run([exe, "--version"], capture_output=True, text=True)
        if ok.returncode == 0 and ok.stdout.startswith("Python 3.12"):
            return exe
    return None


def _venv_python() -> Path:
    py = VENV / "bin" / "python"
    check = (
        subprocess.run(
            [str(py), "-c", "import lerobot, importlib.metadata as m; print(m.version('lerobot'))"],
            capture_output=True,
            text=True,
        )
        if py.exists()
        else None
    )
    if check is not None and check.returncode == 0 and check.stdout.strip() == "0.6.1":
        return py
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(
            f"no lerobot 0.6.1 venv at {VENV}; set {OPT_IN}=1 to create it "
            f"(pip install '{LEROBOT}', about 5 GB with CUDA torch)"
        )
    exe = _python312()
    if exe is None:
        pytest.skip("python3.12 not found (lerobot 0.6.1 requires Python >= 3.12)")
    tmp = VENV.with_name(VENV.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([exe, "-m", "venv", str(tmp)], check=True)
    pip = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", LEROBOT],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"pip install '{LEROBOT}' failed (no network?): {pip.stderr[-800:]}")
    shutil.rmtree(VENV, ignore_errors=True)
    tmp.rename(VENV)
    return VENV / "bin" / "python"


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, fps = sys.argv[1], int(sys.argv[2])
    out = {}
    ds = LeRobotDataset(repo_id="local/test", root=root, video_backend="pyav")
    out["len"], out["num_episodes"], out["fps"] = len(ds), ds.num_episodes, ds.fps
    out["items"] = {}
    for i in (0, 7, 19, 20, len(ds) - 1):
        it = ds[i]
        out["items"][i] = {
            "action": it["action"].numpy().tolist(),
            "state": it["observation.state"].numpy().tolist(),
            "timestamp": float(it["timestamp"]),
            "episode_index": int(it["episode_index"]),
            "task": it["task"],
            "images": {k[len("observation.images."):]: (it[k].numpy() * 255).round().tolist()
                       for k in it if k.startswith("observation.images.")},
            "schema_1_1": {k: it[k].numpy().tolist() for k in it
                           if k.startswith(("target.", "observation.segment",
                                            "observation.mujoco_state"))},
        }
    out["stats_action_mean"] = ds.meta.stats["action"]["mean"].tolist()
    # frames across an episode boundary, with padding, through delta_timestamps
    dt = LeRobotDataset(repo_id="local/test", root=root, video_backend="pyav",
                        delta_timestamps={"observation.images.front": [-2 / fps, 0.0],
                                          "action": [0.0, 1 / fps]})
    it = dt[20]
    out["delta"] = {"front_shape": list(it["observation.images.front"].shape),
                    "front_is_pad": it["observation.images.front_is_pad"].tolist(),
                    "action_is_pad": it["action_is_pad"].tolist()}
    try:  # the default backend (torchcodec) where it works
        ds2 = LeRobotDataset(repo_id="local/test", root=root)
        out["default_backend"] = [ds2._video_backend,
                                  list(ds2[21]["observation.images.front"].shape)]
    except Exception as e:  # noqa: BLE001
        out["default_backend"] = ["failed", repr(e)[:300]]
    print("RESULT " + json.dumps(out))
    """
)


def with_schema_1_1(ep, k_state: int = 9):
    """Add the schema 1.1 fields (targets, gripper commands, segment labels, MuJoCo state)."""
    T = len(ep)
    rng = np.random.default_rng(T)
    ep.target = {a: ep.ee[a].copy() for a in ep.ee}
    ep.gripper_cmd = {a: ep.gripper[a].copy() for a in ep.gripper}
    ep.segment = {a: np.where(np.arange(T) < T // 2, "reach", "grasp") for a in ep.ee}
    ep.segment_ref = {a: np.where(np.arange(T) < T // 2, "", "cube") for a in ep.ee}
    ep.state = rng.normal(size=(T, k_state))
    ep.state_spec = 8191
    ep.arm_joints = {"left": ep.joint_names[:4], "right": ep.joint_names[4:]}
    return ep.validate()


def test_lerobot_061_loads_our_dataset(tmp_path):
    py = _venv_python()
    episodes = [with_schema_1_1(make_episode(0)), with_schema_1_1(make_episode(1, T=25))]
    root = write_lerobot(episodes, tmp_path / "ds", config={"seed": 0})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [str(py), "-c", SCRIPT, str(root), str(FPS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    assert (out["len"], out["num_episodes"], out["fps"]) == (45, 2, FPS)
    starts = [0, 20]
    for i, item in out["items"].items():
        i = int(i)
        e = int(i >= 20)
        k = i - starts[e]
        ep = episodes[e]
        assert item["episode_index"] == e
        assert item["timestamp"] == pytest.approx(k / FPS)
        assert item["task"] == ep.meta.instruction
        np.testing.assert_array_equal(np.float32(item["action"]), ep.action[k])
        np.testing.assert_array_equal(np.float32(item["state"][:7]), np.float32(ep.qpos[k]))
        extra = item["schema_1_1"]
        target = np.float32(extra["target.ee_pose.left"])
        np.testing.assert_array_equal(target, np.float32(ep.target["left"][k]))
        assert extra["observation.segment.left"] == int(k >= len(ep) // 2)  # ids: reach 0, grasp 1
        # float64 on disk (our reader is exact); lerobot's loader hands out float32 tensors
        np.testing.assert_array_equal(
            np.float32(extra["observation.mujoco_state"]), np.float32(ep.state[k])
        )
        for cam in CAMS:
            got = np.transpose(np.asarray(item["images"][cam]), (1, 2, 0))  # CHW -> HWC
            assert np.abs(got - ep.images[cam][k].astype(float)).mean() < 6, (i, cam)
    actions = np.concatenate([e.action for e in episodes]).astype(np.float64)
    np.testing.assert_allclose(out["stats_action_mean"], actions.mean(0), rtol=1e-6)
    assert out["delta"] == {
        "front_shape": [2, 3, 32, 32],
        "front_is_pad": [True, False],
        "action_is_pad": [False, False],
    }
    print("lerobot 0.6.1 default video backend:", out["default_backend"])


DOCTOR = "lerobot-doctor==0.2.0"
DOCTOR_VENV = Path.home() / ".cache" / "demoforge" / "lerobot-doctor-0.2.0-venv"
DOCTOR_OPT_IN = "DEMOFORGE_LEROBOT_DOCTOR"


def _doctor() -> list[str]:
    """Command running lerobot-doctor's CLI with the venv's python (survives a venv rename)."""
    py = DOCTOR_VENV / "bin" / "python"
    cmd = [str(py), "-c", "import sys; from lerobot_doctor.cli import main; sys.exit(main())"]
    if py.exists() and subprocess.run([*cmd, "--version"], capture_output=True).returncode == 0:
        return cmd
    if os.environ.get(DOCTOR_OPT_IN) != "1":
        pytest.skip(f"no {DOCTOR} venv at {DOCTOR_VENV}; set {DOCTOR_OPT_IN}=1 to create it")
    tmp = DOCTOR_VENV.with_name(DOCTOR_VENV.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    pip = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", DOCTOR],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"pip install {DOCTOR} failed (no network?): {pip.stderr[-800:]}")
    tmp.rename(DOCTOR_VENV)
    return cmd


def test_lerobot_doctor_finds_no_problem(tmp_path):
    """``lerobot-doctor check`` on a dataset with every schema 1.1 feature: nothing fails; the
    only warning allowed is that these short test episodes are shorter than ACT's chunk size."""
    cmd = _doctor()
    episodes = [with_schema_1_1(make_episode(i, T=60)) for i in range(3)]
    root = write_lerobot(episodes, tmp_path / "ds", config={"seed": 0})
    proc = subprocess.run(
        [*cmd, "check", str(root), "--json"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    problems = [
        (c["name"], m["severity"], m["message"])
        for c in report["checks"]
        for m in c["messages"]
        if m["severity"] != "PASS"
    ]
    print("lerobot-doctor:", report["overall_severity"], problems)
    assert all(sev == "WARN" and "shorter than chunk_size" in msg for _, sev, msg in problems), (
        problems
    )
