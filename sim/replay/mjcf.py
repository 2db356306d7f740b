"""Loading a replay model: an MJCF file (a bare robot gets a floor and a key light), and arm
lengths for calibrated EE retargeting."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from sim.errors import ConfigError


def load_replay_model(model: str | Path | mujoco.MjModel) -> mujoco.MjModel:
    if isinstance(model, mujoco.MjModel):
        return model
    path = Path(model)
    if not path.is_file():
        raise ConfigError(f"replay model {str(path)!r}: MJCF file not found")
    spec = mujoco.MjSpec.from_file(str(path))
    if not spec.lights:  # a bare robot file: give the video a floor and light to read it by
        tex = spec.add_texture(
            name="df_grid",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
            width=256,
            height=256,
            rgb1=[0.32, 0.34, 0.38],
            rgb2=[0.26, 0.28, 0.32],
        )
        spec.add_material(name="df_grid", texrepeat=[8, 8]).textures[
            mujoco.mjtTextureRole.mjTEXROLE_RGB
        ] = tex.name
        spec.worldbody.add_geom(
            name="df_floor",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[4, 4, 0.05],
            material="df_grid",
            contype=0,
            conaffinity=0,
        )
        spec.worldbody.add_light(
            name="df_key", pos=[1.5, -1.0, 3.0], dir=[-0.4, 0.3, -1.0], diffuse=[0.8, 0.8, 0.8]
        )
    return spec.compile()


def chain_length(model: mujoco.MjModel, frame: str, root: str) -> float:
    """Sum of link offsets [m] from body ``root`` down to body/site ``frame`` (pose-independent).

    Useful as an arm length for ``scale`` in calibrated EE retargeting.
    """
    total = 0.0
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, frame)
    if sid >= 0:
        total += float(np.linalg.norm(model.site_pos[sid]))
        body = int(model.site_bodyid[sid])
    else:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, frame)
        if body < 0:
            raise ConfigError(f"chain_length: no site or body named {frame!r}")
    rid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, root)
    if rid < 0:
        raise ConfigError(f"chain_length: no body named {root!r}")
    while body != rid:
        if body == 0:
            raise ConfigError(f"chain_length: {frame!r} is not below body {root!r}")
        total += float(np.linalg.norm(model.body_pos[body]))
        body = int(model.body_parentid[body])
    return total
