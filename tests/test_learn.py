"""Behaviour-cloning check (sim.learn): data loading, normalization, training, closed-loop
evaluation in physics, run folder, checkpoints, clear errors, the CLI smoke run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ConfigError, SchemaError
from sim.learn.data import load_bc_data
from sim.learn.evaluate import eval_seeds, wilson_interval

CLI = [sys.executable, "-c", "from sim.cli import train_eval_main; train_eval_main()"]
EE_EXTRA = ("target.ee_pose.*", "target.gripper.*")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """4 scripted stack_blocks episodes, no cameras."""
    from sim.generate import GenerateConfig, generate
    from sim.render import CameraConfig

    out = tmp_path_factory.mktemp("learn") / "sb4"
    generate(
        GenerateConfig(
            task="stack_blocks",
            episodes=4,
            cameras=CameraConfig(names=()),
            output=str(out),
            progress=False,
        )
    )
    return out


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert wilson_interval(50, 50) == pytest.approx((0.92865, 1.0), abs=1e-4)
    lo, hi = wilson_interval(45, 50)
    assert lo < 0.9 < hi


def test_eval_seeds_are_held_out_and_deterministic():
    a = eval_seeds(20, seed=0)
    assert a == eval_seeds(20, seed=0) and len(set(a)) == 20
    assert eval_seeds(20, seed=1) != a
    b = eval_seeds(20, seed=0, exclude=frozenset(a[:3]))
    assert not set(b) & set(a[:3]) and b[:17] == a[3:]


def test_load_matches_dataset_and_live_scene(tiny):
    from sim.learn.observe import Observer
    from sim.tasks import build_scene

    d = load_bc_data(tiny)
    assert d.task == "stack_blocks" and d.num_episodes == 4
    assert d.obs_keys == ("derived.poses", "derived.relative", "derived.gripper", "derived.time")
    # poses: 2 EEs + 3 objects x (pos + 6D rotation); relative: 3 objects to 2 EEs + 3 object
    # pairs, 3 axes each; 2 grippers; time
    assert d.obs.shape == (int(d.lengths.sum()), 5 * 9 + 27 + 2 + 1)
    assert d.obs_names["derived.poses"][:4] == ["left.x", "left.y", "left.z", "left.r00"]
    assert d.obs_names["derived.relative"][:2] == ["block_a-left.x", "block_a-left.y"]
    assert d.obs_names["derived.gripper"] == ["left_gripper", "right_gripper"]
    ep1 = d.obs[d.starts[1] : d.starts[1] + d.lengths[1], -1]
    np.testing.assert_allclose(ep1, np.arange(d.lengths[1]) / d.fps, atol=1e-5)  # time [s]
    full = load_bc_data(tiny, obs_keys=("observation.state", "observation.ee_pose.*"))
    n = int(d.lengths.sum())
    np.testing.assert_allclose(d.obs[:, 72:74], full.obs[:, 14:16])  # grippers
    np.testing.assert_allclose(d.obs[:, 9:12], full.obs[:, 16 + 7 + 0 : 16 + 7 + 3])  # right pos
    from sim.transforms import quat_to_mat

    rot = quat_to_mat(full.obs[:, 16 + 3 : 16 + 7].astype(np.float64))  # left EE
    np.testing.assert_allclose(d.obs[:, 3:6], rot[:, :, 0], atol=1e-6)
    np.testing.assert_allclose(d.obs[:, 6:9], rot[:, :, 1], atol=1e-6)
    assert full.obs.shape == (n, 16 + 14)
    assert d.action.shape == (d.obs.shape[0], 16) and d.action_names[-1] == "right_gripper"
    stats = json.loads((tiny / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(d.stats["action"].mean, stats["action"]["mean"], rtol=1e-6)
    from sim.sources import stream_seed

    assert d.seeds == {stream_seed(0, i, "reset") for i in range(4)}
    # the live observation of a reset from an episode's reset seed is its first frame
    scene = build_scene("demoforge_humanoid", "stack_blocks")
    scene.reset(np.random.default_rng(stream_seed(0, 2, "reset")), "D0")
    live = Observer(scene, d.obs_keys, d.obs_names)()
    np.testing.assert_allclose(live, d.obs[d.starts[2]], atol=1e-6)
    raw = Observer(scene, full.obs_keys, full.obs_names)()
    np.testing.assert_allclose(raw, full.obs[full.starts[2]], atol=1e-6)
    assert set(eval_seeds(10, exclude=d.seeds)).isdisjoint(d.seeds)


def test_derived_relative_features_from_columns(tiny):
    """derived.relative (one function for dataset columns and live scenes): object minus EE
    positions per arm, then object pairs; checked against the raw columns by hand."""
    from sim.learn.features import derive

    d = load_bc_data(tiny, obs_keys=("observation.environment_state", "derived.relative"))
    env = d.obs[:, :21]
    ee = {a: d.extra[f"observation.ee_pose.{a}"] for a in ("left", "right")}
    rel = d.obs[:, 21:]
    np.testing.assert_allclose(rel[:, 0:3], env[:, 0:3] - ee["left"][:, :3], atol=1e-6)
    np.testing.assert_allclose(rel[:, 12:15], env[:, 7:10] - ee["right"][:, :3], atol=1e-6)
    np.testing.assert_allclose(rel[:, 18:21], env[:, 7:10] - env[:, 0:3], atol=1e-6)  # b - a
    assert d.obs_names["derived.relative"][18] == "block_b-block_a.x"
    with pytest.raises(SchemaError, match="derived.nope"):
        load_bc_data(tiny, obs_keys=("derived.nope",))
    with pytest.raises(SchemaError, match="observation.environment_state"):
        derive("derived.relative", {"observation.ee_pose.left": ee["left"]}, {})


def test_ee_actions_round_trip_recorded_targets(tiny):
    """EE actions encoded from an episode's target.ee_pose/target.gripper columns decode back to
    the same commanded poses and gripper openings (both references)."""
    from sim.learn.policy import PolicyConfig
    from sim.learn.train import action_targets, ee_space

    d = load_bc_data(tiny, extra=EE_EXTRA)
    space = ee_space(d)
    assert space.arms == ("left", "right") and space.gripper_arms == ("left", "right")
    assert space.names[:2] == ["left.dx", "left.dy"] and space.dim == 14
    for ref_kind in ("reset", "query"):
        chunks, rel = action_targets(d, PolicyConfig(chunk=6, ee_reference=ref_kind))
        assert chunks.shape == (len(d.episode), 6, 14) and (rel == -1).all()
        ep = 1
        s0, n = int(d.starts[ep]), int(d.lengths[ep])
        for i in (s0, s0 + n // 2, s0 + n - 3):
            at = s0 if ref_kind == "reset" else i
            ref = {a: d.extra[f"observation.ee_pose.{a}"][at] for a in space.arms}
            poses, grip = space.decode(ref, chunks[i])
            steps = np.minimum(np.arange(i, i + 6), s0 + n - 1)  # the last target is held
            for a in space.arms:
                want = d.extra[f"target.ee_pose.{a}"][steps]
                np.testing.assert_allclose(poses[a][:, :3], want[:, :3], atol=1e-6)
                dots = np.abs(np.sum(poses[a][:, 3:] * want[:, 3:], axis=1))  # q ~ -q
                np.testing.assert_allclose(dots, 1.0, atol=1e-6)
            np.testing.assert_allclose(grip[:, 1], d.extra["target.gripper.right"][steps, 0])


def test_ee_evaluator_replays_a_recorded_episode(tiny):
    """Feeding an episode's own EE actions to the evaluator (IK as the generator runs it)
    reproduces the episode: the task succeeds in physics from the episode's reset seed."""
    from types import SimpleNamespace

    from sim.learn.evaluate import Evaluator
    from sim.learn.policy import PolicyConfig
    from sim.learn.train import action_targets, ee_space
    from sim.sources import stream_seed

    d = load_bc_data(tiny, extra=EE_EXTRA)
    chunk = 8
    chunks, _ = action_targets(d, PolicyConfig(chunk=chunk, ee_reference="reset"))
    ev = Evaluator(
        "stack_blocks",
        "demoforge_humanoid",
        "D0",
        20.0,
        d.obs_keys,
        d.obs_names,
        max_steps=int(d.lengths[0]) + 20,
        action_space=ee_space(d),
    )

    class Replay:
        history = 1
        cfg = SimpleNamespace(chunk=chunk, execute=chunk, ensemble=0.0, ee_reference="reset")
        t = 0

        def act(self, obs, images=None):
            i = min(int(d.starts[0]) + self.t, int(d.starts[0] + d.lengths[0]) - 1)
            np.testing.assert_allclose(obs, d.obs[i], atol=0.05)  # same states as recorded
            self.t += chunk
            return chunks[i]

    ok, steps, cause = ev.rollout(Replay(), stream_seed(0, 0, "reset"))
    ev.close()
    assert ok and cause is None, (steps, cause)


def test_missing_feature_names_feature_and_file(tiny, tmp_path):
    bad = tmp_path / "no_objects"
    shutil.copytree(tiny, bad)
    info_path = bad / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    del info["features"]["observation.environment_state"]
    info.pop("demoforge_integrity", None)  # as a foreign tool would write it: no digest
    info_path.write_text(json.dumps(info))
    with pytest.raises(SchemaError, match=r"'observation\.environment_state'") as e:
        load_bc_data(bad)
    assert str(info_path) in str(e.value)
    with pytest.raises(SchemaError, match=r"'observation\.images\.head'.*camera image"):
        load_bc_data(tiny, cameras=("head",))
    # the EE action space needs the commanded EE targets (schema >= 1.1)
    no_targets = tmp_path / "no_targets"
    shutil.copytree(tiny, no_targets)
    info_path = no_targets / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    for k in [k for k in info["features"] if k.startswith("target.")]:
        del info["features"][k]
    info.pop("demoforge_integrity", None)
    info_path.write_text(json.dumps(info))
    with pytest.raises(SchemaError, match=r"'target\.ee_pose\.<arm>'") as e:
        load_bc_data(no_targets, extra=EE_EXTRA)
    assert str(info_path) in str(e.value)


torch = pytest.importorskip("torch", reason="sim.learn training needs torch (extra [learn])")


def _cfg(tiny: Path, out: Path, **kw):
    from sim.learn.policy import PolicyConfig
    from sim.learn.run import EvalConfig, TrainEvalConfig
    from sim.learn.train import TrainConfig

    return TrainEvalConfig(
        dataset=str(tiny),
        output=str(out),
        policy=PolicyConfig(hidden=64, layers=2, chunk=4, execute=4),
        train=TrainConfig(steps=kw.pop("steps", 30), batch_size=64, warmup=5, log_every=10),
        eval=EvalConfig(
            rollouts=kw.pop("rollouts", 5),
            curve_every=kw.pop("curve_every", 0),
            curve_rollouts=2,
            video_rollouts=1,
            video_size=(96, 128),
            max_steps=kw.pop("max_steps", 60),
        ),
        **kw,
    )


def test_training_is_deterministic_and_fits(tiny):
    from sim.learn.policy import PolicyConfig
    from sim.learn.train import TrainConfig, action_targets, make_policy, train

    d = load_bc_data(tiny, extra=EE_EXTRA)
    sds, logs = [], []
    for _ in range(2):
        pol = make_policy(d, PolicyConfig(hidden=64, layers=2, chunk=4, execute=2))
        logs.append(
            train(d, pol, TrainConfig(steps=300, batch_size=64, warmup=10, log_every=20, lr=3e-3))
        )
        sds.append(pol.state_dict())
    for k in sds[0]:
        assert torch.equal(sds[0][k], sds[1][k]), k
    assert logs[0][-1]["loss"] < 0.5 * logs[0][0]["loss"], logs[0]
    # EE actions (default): 6 per arm + 2 grippers, near the recorded ones after fitting
    chunks, _ = action_targets(d, pol.cfg)
    np.testing.assert_allclose(pol.act(d.obs[3]), chunks[3], atol=0.05)
    # relative joint targets: act() adds back the observed joint positions
    pol = make_policy(
        d, PolicyConfig(hidden=64, layers=2, chunk=4, execute=2, action_space="joint")
    )
    train(d, pol, TrainConfig(steps=300, batch_size=64, warmup=10, log_every=20, lr=3e-3))
    chunk = pol.act(d.obs[0])
    assert chunk.shape == (4, 16)
    assert np.abs(chunk[0, :14] - d.action[0, :14]).max() < 0.5
    # epochs scale the steps with the dataset
    assert TrainConfig(steps=10, epochs=2, batch_size=64).total_steps(6400) == 200


def test_train_eval_run_folder(tiny, tmp_path):
    import imageio.v3 as iio

    from sim.learn.checkpoint import load_checkpoint
    from sim.learn.run import train_eval

    out = tmp_path / "run"
    m = train_eval(_cfg(tiny, out, curve_every=10))
    for f in ("config.json", "checkpoint.pt", "metrics.json", "learning_curve.png", "rollouts.mp4"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval"]["rollouts"] == 5 and saved == json.loads(json.dumps(m))
    lo, hi = saved["eval"]["ci95"]
    assert 0.0 <= lo <= saved["eval"]["success_rate"] <= hi <= 1.0
    assert [c["step"] for c in saved["learning_curve"]] == [10, 20, 30]
    assert saved["learning_curve"][-1]["rollouts"] == 5
    assert set(saved["eval"]["seeds"]).isdisjoint(load_bc_data(tiny).seeds)
    assert sum(saved["eval"]["failures"].values()) + saved["eval"]["successes"] == 5
    frames = iio.imread(out / "rollouts.mp4", plugin="pyav")
    assert frames.shape[1:] == (96, 128, 3) and len(frames) >= 2
    assert json.loads((out / "config.json").read_text())["dataset"] == str(tiny)
    pol, meta = load_checkpoint(out / "checkpoint.pt", task="stack_blocks")
    assert meta.task == "stack_blocks" and meta.obs_keys[0] == "derived.poses"
    assert meta.obs_names["derived.gripper"][-1] == "right_gripper"
    assert meta.action_arms == ("left", "right") and meta.action_names[-1] == "right_gripper"
    np.testing.assert_array_equal(pol.act(np.zeros(75, np.float32)).shape, (4, 14))
    # evaluating the saved checkpoint again gives the same rollouts (deterministic)
    again = train_eval(_cfg(tiny, tmp_path / "again", checkpoint=str(out / "checkpoint.pt")))
    assert again["eval"]["success"] == m["eval"]["success"]
    assert again["eval"]["steps"] == m["eval"]["steps"]
    with pytest.raises(ConfigError, match="overwrite=true"):
        train_eval(_cfg(tiny, out))


def test_checkpoint_from_another_task(tiny, tmp_path):
    from sim.learn.checkpoint import load_checkpoint
    from sim.learn.run import train_eval

    out = tmp_path / "run"
    train_eval(_cfg(tiny, out, steps=2, rollouts=1, max_steps=3))
    ckpt = out / "checkpoint.pt"
    msg = rf"{ckpt}.*trained on task 'stack_blocks'.*'insert_peg'"
    with pytest.raises(ConfigError, match=msg):
        load_checkpoint(ckpt, task="insert_peg")
    with pytest.raises(ConfigError, match=msg):
        train_eval(_cfg(tiny, tmp_path / "e", checkpoint=str(ckpt), task="insert_peg"))
    with pytest.raises(ConfigError, match=r"holds task 'stack_blocks'.*'open_drawer'"):
        train_eval(_cfg(tiny, tmp_path / "f", task="open_drawer"))


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_smoke_and_bad_input(tiny, tmp_path):
    """CI smoke: tiny dataset, 30 steps, 5 rollouts through demoforge-train-eval."""
    out = tmp_path / "smoke"
    r = _cli(
        [
            str(tiny),
            f"output={out}",
            "learn=smoke",
            "eval.rollouts=5",
            "eval.max_steps=60",
            "eval.video_rollouts=1",
            "eval.video_size=[96,128]",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stack_blocks: success" in r.stdout and "/5 =" in r.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval"]["rollouts"] == 5 and m["losses"][-1]["step"] == 30
    assert "hidden: 64" in (out / "config.yaml").read_text()
    bad = _cli(
        [
            f"dataset={tiny}",
            f"output={tmp_path / 'bad'}",
            "learn=smoke",
            "obs=[observation.state,observation.not_there]",
        ],
        tmp_path,
    )
    assert bad.returncode == 2
    assert "demoforge: error:" in bad.stderr and "'observation.not_there'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_temporal_ensemble_and_open_loop_chunks(tiny):
    """execute=k queries every k steps; ensemble>0 queries every step and applies the
    exp-weighted mean (oldest first) of every chunk's prediction for the step."""
    from types import SimpleNamespace

    from sim.learn.evaluate import Evaluator

    d = load_bc_data(tiny)
    ev = Evaluator(
        "stack_blocks", "demoforge_humanoid", "D0", 20.0, d.obs_keys, d.obs_names, max_steps=6
    )
    home = ev.scene.home_ctrl[ev.scene.joint_act]
    base = np.concatenate([home, [1.0, 1.0]])

    class Fake:
        history = 1

        def __init__(self, **cfg):
            self.cfg = SimpleNamespace(chunk=4, **cfg)
            self.calls = 0

        def act(self, obs, images=None):
            assert obs.shape == (d.obs.shape[1],)
            q = self.calls
            self.calls += 1
            return np.stack([base + 0.01 * q] * 4)

    applied = []
    set_action = ev.scene.set_action
    ev.scene.set_action = lambda a: (applied.append(np.array(a)), set_action(a))[1]
    open_loop = Fake(execute=4, ensemble=0.0)
    ev.rollout(open_loop, seed=1)
    assert open_loop.calls == 2  # steps 0 and 4 of 6
    np.testing.assert_allclose([a[0] - base[0] for a in applied], [0] * 4 + [0.01] * 2, atol=1e-12)
    applied.clear()
    m = 0.5
    ens = Fake(execute=1, ensemble=m)
    ev.rollout(ens, seed=1)
    assert ens.calls == 6
    w = np.exp(-m * np.arange(4))
    for t, a in enumerate(applied):
        qs = np.arange(max(0, t - 3), t + 1)  # chunks still covering step t, oldest first
        expect = (w[: len(qs)] * qs).sum() / w[: len(qs)].sum()
        assert a[0] - base[0] == pytest.approx(0.01 * expect, abs=1e-12), t
    ev.close()
