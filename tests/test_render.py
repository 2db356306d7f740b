"""Headless rendering: real frames from every robot camera, presets, videos, clear GL errors."""

from __future__ import annotations

import os
import subprocess
import sys

import imageio.v3 as iio
import mujoco
import numpy as np
import pytest

from sim.errors import ConfigError
from sim.render import CameraRig, model_quality, resolve_cameras, set_scene_flags, write_video


def test_cameras_render_distinct_frames(scene_ik):
    scene, _ = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    cams = resolve_cameras(scene.robot.cameras, ["head", "left_wrist", "right_wrist"])
    rig = CameraRig(scene.model, cams, 48, 64)
    frames = rig.render(scene.data)
    assert set(frames) == {"head", "left_wrist", "right_wrist"}
    for f in frames.values():
        assert f.shape == (48, 64, 3) and f.dtype == np.uint8 and f.std() > 5
    assert not np.array_equal(frames["head"], frames["right_wrist"])
    rig.close()


def test_quality_presets_and_bad_values(scene_ik):
    scene, _ = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    fast = CameraRig(scene.model, {"head": "head_cam"}, 64, 64, "fast").render(scene.data)
    high = CameraRig(scene.model, {"head": "head_cam"}, 64, 64, "high").render(scene.data)
    assert not np.array_equal(fast["head"], high["head"])  # shadows change the image
    # fast draws round parts with fewer facets: only silhouette pixels of round parts move
    vq, samples = scene.model.vis.quality, scene.model.vis.quality.offsamples
    vq.offsamples = 0  # fast's flags and MSAA, the model's own tessellation
    ref = mujoco.Renderer(scene.model, 64, 64)
    vq.offsamples = samples
    set_scene_flags(ref.scene, "fast")
    ref.update_scene(scene.data, camera="head_cam")
    diff = np.abs(fast["head"].astype(int) - ref.render().astype(int)).max(-1)
    ref.close()
    assert 0 < (diff > 8).mean() < 0.02, (diff > 8).mean()
    with pytest.raises(ConfigError, match="height/width must be > 0"):
        CameraRig(scene.model, {"head": "head_cam"}, 0, 64)
    with pytest.raises(ConfigError, match="quality 'ultra'"):
        CameraRig(scene.model, {"head": "head_cam"}, 64, 64, "ultra")
    with pytest.raises(ConfigError, match="camera 'nose'.*'nose_cam' not in the model"):
        CameraRig(scene.model, {"nose": "nose_cam"}, 64, 64)


def test_rig_renders_into_its_own_context_after_others_were_current(scene_ik):
    # the rig skips eglMakeCurrent when its context is current: after another renderer (of
    # another model, so its GL objects differ) it must switch back, or it would draw there
    scene, _ = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    a = CameraRig(scene.model, {"head": "head_cam"}, 48, 64)
    first = a.render(scene.data)["head"]
    small = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><light pos="0 0 3"/><geom type="sphere" size=".3" rgba="1 0 0 1"/>'
        '<camera name="c" pos="0 -2 0" xyaxes="1 0 0 0 0 1"/></worldbody></mujoco>'
    )
    small_data = mujoco.MjData(small)
    mujoco.mj_forward(small, small_data)
    b = CameraRig(small, {"c": "c"}, 32, 32)
    ball = b.render(small_data)["c"]
    assert np.array_equal(a.render(scene.data)["head"], first)
    other = mujoco.Renderer(small, 48, 64)
    other.update_scene(small_data, camera="c")
    red = other.render()
    assert np.array_equal(a.render(scene.data)["head"], first)
    assert np.array_equal(b.render(small_data)["c"], ball)
    other.update_scene(small_data, camera="c")
    assert np.array_equal(other.render(), red)  # and the rigs left the other's buffer alone
    for r in (a, b, other):
        r.close()


def test_large_images_grow_the_offscreen_buffer(scene_ik):
    scene, _ = scene_ik()
    rig = CameraRig(scene.model, {"head": "head_cam"}, 1000, 1400)
    assert rig.render(scene.data)["head"].shape == (1000, 1400, 3)
    rig.close()


def test_video_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, 33, 47, 3), dtype=np.uint8), 12, axis=0)
    frames[6:] = 255 - frames[6:]
    path = write_video(frames, tmp_path / "v.mp4", fps=20)
    back = iio.imread(path, plugin="pyav")
    assert back.shape[0] == 12 and back.shape[1:3] == (34, 48)  # padded to even sizes
    assert not list(tmp_path.glob("*.tmp*"))


def _run_without(code: str, cwd, drop: tuple[str, ...], **env_set: str):
    """Run ``python -c code`` with the variables ``drop`` removed from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in drop} | env_set
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_mujoco_imported_before_sim_still_renders_headless(tmp_path):
    code = (
        "import mujoco, numpy as np; import sim; from sim.render import CameraRig;"
        'm = mujoco.MjModel.from_xml_string(\'<mujoco><worldbody><light pos="0 0 1"/>'
        '<geom size=".1"/><camera name="c" pos="0 0 1"/></worldbody></mujoco>\');'
        "d = mujoco.MjData(m); mujoco.mj_forward(m, d);"
        "f = CameraRig(m, {'c': 'c'}, 16, 16).render(d)['c']; print('OK', f.std() > 0)"
    )
    r = _run_without(code, tmp_path, ("DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM"))
    assert r.returncode == 0 and "OK True" in r.stdout, r.stderr[-1500:]


def test_missing_gl_backend_names_the_fix(tmp_path):
    code = (
        "import sim, mujoco; from sim.render import make_renderer;"
        "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody/></mujoco>');"
        "make_renderer(m, 32, 32)"
    )
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM")
    r = _run_without(code, tmp_path, drop, MUJOCO_GL="glfw")
    assert r.returncode != 0
    assert "RenderError" in r.stderr and "MUJOCO_GL='glfw'" in r.stderr
    assert "set MUJOCO_GL=egl" in r.stderr


def test_batched_rig_equals_a_plain_mujoco_renderer_per_camera(scene_ik):
    """All cameras drawn into one buffer and read once give mujoco.Renderer's image (to one
    intensity level on a few pixels: the rasterizer's rounding depends on the viewport offset)."""

    scene, _ = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    cams = resolve_cameras(scene.robot.cameras, ["head", "left_wrist", "right_wrist"])
    vq = scene.model.vis.quality
    own = (vq.offsamples, vq.numslices, vq.numstacks)
    rig = CameraRig(scene.model, cams, 48, 64, "fast")
    assert (vq.offsamples, vq.numslices, vq.numstacks) == own  # the model keeps its settings
    frames = rig.render(scene.data)
    with model_quality(scene.model, "fast"):  # the same MSAA and tessellation
        ref = mujoco.Renderer(scene.model, 48, 64)
    assert (vq.offsamples, vq.numslices, vq.numstacks) == own
    set_scene_flags(ref.scene, "fast")
    assert not ref.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW]
    for name, cam in cams.items():  # later cameras reuse the step's geoms: still exact
        ref.update_scene(scene.data, camera=cam)
        diff = np.abs(frames[name].astype(int) - ref.render().astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.005, (name, diff.max(), diff.mean())
    ref.close()
    rig.close()
    with pytest.raises(Exception, match="after close"):
        rig.render(scene.data)


@pytest.mark.parametrize("task", ["stack_blocks", "carry_tray", "insert_peg"])  # 3 rooms
def test_frustum_culling_leaves_every_frame_unchanged(task):
    """The rig drops geoms outside each camera's view before drawing: the same pixels as
    drawing the whole scene, on arms moving through the wrist cameras' views, while most
    of the room is skipped; no geom the segmentation pass sees is ever culled."""
    from sim.frustum import SceneCuller
    from sim.tasks import build_scene

    scene = build_scene("demoforge_humanoid", task)
    m, d = scene.model, scene.data
    cams = resolve_cameras(scene.robot.cameras, ["head", "left_wrist", "right_wrist"])
    culled, whole = CameraRig(m, cams, 48, 64), CameraRig(m, cams, 48, 64)
    whole._culler = None
    high = CameraRig(m, cams, 32, 32, "high")
    assert high._culler is None  # shadows and reflections show off-view geoms
    high.close()
    seg = mujoco.Renderer(m, 48, 64)
    seg.enable_segmentation_rendering()
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(25):
        d.ctrl[:] = scene.home_ctrl + rng.normal(0.0, 0.3, m.nu)
        scene.step()
        a, b = culled.render(d), whole.render(d)
        for name in cams:
            assert np.array_equal(a[name], b[name]), name
        for cam in cams.values():
            seg.update_scene(d, camera=cam)
            ids = seg.render()
            seen = set(ids[..., 0][ids[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)].ravel())
            cu = SceneCuller(seg.scene)
            total = cu.snapshot()
            cu.cull(64 / 48)
            left = {seg.scene.geoms[i].objid for i in range(seg.scene.ngeom)}
            assert seen <= left, (cam, sorted(seen - left))
            kept.append(len(left) / total)
    assert culled._culler.enabled
    assert np.mean(kept) < 0.7, np.mean(kept)  # most of the room is outside the views
    for r in (culled, whole, seg):
        r.close()
