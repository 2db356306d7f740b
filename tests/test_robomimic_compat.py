"""Our robomimic output loads in robomimic 0.3.0's own ``SequenceDataset`` (training defaults).

robomimic 0.3.0 (PyPI, 2023) pins old dependencies, so it lives in its own cached venv at
``~/.cache/demoforge/robomimic-0.3.0-venv`` (``python3.11 -m venv``, ``pip install
robomimic==0.3.0 torch==2.13.0 six``: the CPU torch wheel on disk; robomimic imports ``six``
without declaring it). The test runs when that venv exists; with ``DEMOFORGE_ROBOMIMIC_COMPAT=1``
it creates the venv first; otherwise it is skipped with the reason. The check only imports
``robomimic.utils.dataset`` / ``obs_utils`` / ``config`` (the PyPI torchvision does not load on the
CPU torch build, and the dataset path does not need it) and builds the dataset exactly as
``robomimic.utils.train_utils.dataset_factory`` does from ``config_factory("bc")``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_writers import FPS, XML, simulate  # noqa: E402

from sim.io.writer import open_writer  # noqa: E402

pytestmark = pytest.mark.slow

PACKAGES = ["robomimic==0.3.0", "torch==2.13.0", "six"]
VENV = Path.home() / ".cache" / "demoforge" / "robomimic-0.3.0-venv"
OPT_IN = "DEMOFORGE_ROBOMIMIC_COMPAT"


def _venv_python() -> Path:
    py = VENV / "bin" / "python"
    probe = "import six, robomimic, torch; print(robomimic.__version__)"
    if py.exists():
        check = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if check.returncode == 0 and check.stdout.strip() == "0.3.0":
            return py
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(
            f"no robomimic 0.3.0 venv at {VENV}; set {OPT_IN}=1 to create it "
            f"(python3.11 -m venv + pip install {' '.join(PACKAGES)})"
        )
    exe = shutil.which("python3.11")
    if exe is None:
        pytest.skip("python3.11 not found (robomimic 0.3.0 needs an older Python than 3.13)")
    tmp = VENV.with_name(VENV.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([exe, "-m", "venv", str(tmp)], check=True)
    pip = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", *PACKAGES],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"pip install {' '.join(PACKAGES)} failed (no network?): {pip.stderr[-800:]}")
    shutil.rmtree(VENV, ignore_errors=True)
    tmp.rename(VENV)
    return VENV / "bin" / "python"


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import h5py, numpy as np, torch
    from robomimic.config import config_factory
    import robomimic.utils.obs_utils as ObsUtils
    from robomimic.utils.dataset import SequenceDataset

    path = sys.argv[1]
    low_dim = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_opening", "object"]
    rgb = ["front_image"]
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": low_dim, "rgb": rgb}})
    config = config_factory("bc")
    out = {"train_defaults": dict(config.train)}

    def make(**over):
        t = config.train
        kw = dict(
            hdf5_path=path, obs_keys=low_dim + rgb, dataset_keys=t.dataset_keys,
            load_next_obs=t.hdf5_load_next_obs, frame_stack=t.frame_stack,
            seq_length=t.seq_length, pad_frame_stack=t.pad_frame_stack,
            pad_seq_length=t.pad_seq_length, get_pad_mask=False, goal_mode=t.goal_mode,
            hdf5_cache_mode=t.hdf5_cache_mode, hdf5_use_swmr=t.hdf5_use_swmr,
            hdf5_normalize_obs=t.hdf5_normalize_obs, filter_by_attribute=None)
        kw.update(over)
        return SequenceDataset(**kw)

    cases = {
        "defaults_next_obs": dict(load_next_obs=True),
        "seq10": dict(load_next_obs=True, seq_length=10),
        "stack3": dict(load_next_obs=True, frame_stack=3),
        "seq10_stack3_lowdim_cache": dict(load_next_obs=True, seq_length=10, frame_stack=3,
                                          hdf5_cache_mode="low_dim"),
        "no_cache_train_split": dict(load_next_obs=True, hdf5_cache_mode=None,
                                     filter_by_attribute="train"),
        # robomimic normalizes low-dim obs only (its image stats are HWC, images become CHW)
        "normalized": dict(load_next_obs=True, hdf5_normalize_obs=True, obs_keys=low_dim),
    }
    for name, over in cases.items():
        ds = make(**over)
        loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, num_workers=0)
        batch = next(iter(loader))
        item = ds[5]
        out[name] = {
            "len": len(ds),
            "n_demos": ds.n_demos,
            "batch_shapes": {k: list(v.shape) for k, v in batch["obs"].items()},
            "next_obs_keys": sorted(batch.get("next_obs", {})),
            "actions_shape": list(batch["actions"].shape),
            "item_actions": np.asarray(item["actions"]).tolist(),
            "item_eef_pos": np.asarray(item["obs"]["robot0_eef_pos"]).tolist(),
            "item_next_eef_pos": np.asarray(item["next_obs"]["robot0_eef_pos"]).tolist(),
            "item_image_shape": list(np.asarray(item["obs"]["front_image"]).shape)
            if "front_image" in item["obs"] else None,
            "item_image_max": float(np.asarray(item["obs"]["front_image"]).max())
            if "front_image" in item["obs"] else None,
            "item_eef_std": float(np.std(np.asarray(item["obs"]["robot0_eef_pos"]))),
            "dones": np.asarray(item["dones"]).tolist(),
        }
    print("RESULT " + json.dumps(out))
    """
)


def test_robomimic_030_sequence_dataset_loads_our_file(tmp_path):
    py = _venv_python()
    episodes = [simulate(16, 0), simulate(12, 1), simulate(14, 2)]
    w = open_writer(
        "robomimic",
        tmp_path / "ds",
        fps=FPS,
        config={"seed": 0},
        model_xml=XML,
        valid_fraction=0.34,
        split_seed=0,
    )
    for ep in episodes:
        w.add(ep)
    root = w.finalize()
    proc = subprocess.run(
        [str(py), "-c", SCRIPT, str(root / "demo.hdf5")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    print(json.dumps(out["train_defaults"]))
    total = sum(len(e) for e in episodes)
    ep0 = episodes[0]
    keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_opening", "object"]
    assert out["normalized"]["len"] == total and out["normalized"]["next_obs_keys"] == sorted(keys)
    for name in ("defaults_next_obs", "seq10", "stack3", "seq10_stack3_lowdim_cache"):
        r = out[name]
        assert r["len"] == total and r["n_demos"] == 3, name
        assert r["next_obs_keys"] == sorted([*keys, "front_image"])
        assert r["item_image_shape"][-3:] == [16, 16, 3]  # raw HWC uint8 (processed in training)
    assert out["defaults_next_obs"]["item_image_max"] == float(ep0.images["front"][5].max())
    r = out["defaults_next_obs"]
    assert r["batch_shapes"]["robot0_eef_pos"] == [4, 1, 3]  # (batch, seq_length, dim)
    assert r["batch_shapes"]["object"] == [4, 1, 7]
    np.testing.assert_allclose(r["item_actions"], ep0.action[5:6])
    np.testing.assert_allclose(r["item_eef_pos"], ep0.ee["main"][5:6, :3])
    np.testing.assert_allclose(r["item_next_eef_pos"], ep0.ee["main"][6:7, :3])
    s = out["seq10"]
    assert s["actions_shape"] == [4, 10, 3] and s["batch_shapes"]["robot0_eef_pos"] == [4, 10, 3]
    np.testing.assert_allclose(s["item_actions"], ep0.action[5:15])
    assert s["dones"][-1] == 0  # steps 5..14 of a 16-step demo: not the last
    st = out["stack3"]
    assert st["batch_shapes"]["robot0_eef_pos"] == [4, 3, 3]
    np.testing.assert_allclose(st["item_eef_pos"], ep0.ee["main"][3:6, :3])
    split = out["no_cache_train_split"]
    assert split["n_demos"] == 2 and split["len"] in (16 + 12, 16 + 14, 12 + 14)
