"""RLDS (Open X-Embodiment style) TFRecord reader, without TensorFlow.

Each TFRecord record is one episode serialized as a ``tf.train.Example`` whose keys flatten the
RLDS nesting (``steps/observation/image_0``, ``steps/action``, ``episode_metadata/...``); per-step
features hold T values back to back (decoded by :mod:`sim.io.tfrecord`).

Mapping into an Episode (defaults fit BridgeData / WidowX, ``state_layout="bridge"``):

- ``time`` = step / ``fps`` (BridgeData: 5 Hz);
- ``steps/observation/state`` (T, 7) = [x, y, z, roll, pitch, yaw, gripper]:
  ``ee["main"]`` = position [m] + orientation. The Euler angles are **extrinsic x-y-z**
  (``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, scipy ``"xyz"``), as in bridge_data_robot's
  ``transformation_utils``; they give the gripper's rotation *relative to the WidowX default
  gripper orientation* ``D = [[0,0,1],[0,1,0],[-1,0,0]]`` (gripper pointing down), so the EE
  orientation is ``R @ D`` (``apply_default_rot=False`` keeps ``R``). Frame: robot base.
  ``gripper["main"]`` = state[:, 6] clipped to [0, 1] (1 = open);
- ``steps/action`` (T, 7) = [dx, dy, dz, droll, dpitch, dyaw, gripper] (delta EE + absolute
  gripper opening), kept as recorded in ``action`` and converted to absolute commands
  (:func:`bridge_targets`): ``target["main"]`` position = state position + (dx, dy, dz) in the
  robot base frame; orientation = ``Rxyz(droll, dpitch, dyaw) @ Rxyz(state rpy) @ D`` (the
  rotation delta is expressed in the base frame, applied on the left; on the Bridge sample this
  matches the next state best: mean 0.020 rad vs 0.025 rad for the right-multiplied or summed
  Euler angles); ``gripper_cmd["main"]`` = action[:, 6];
- gripper values (state and command) within 0.05 of [0, 1] are clipped to it (the Bridge sample
  records 1.0067 for open; the observed range is kept in provenance); further out is an error;
- ``steps/observation/image_<k>`` -> ``images["image_<k>"]`` (JPEG decoded to uint8 HWC, lazily);
  slots whose frames are all empty, or all one identical single-colour frame (RLDS pads missing
  cameras that way), are skipped and listed in ``meta.provenance["skipped_cameras"]``. The
  ``episode_metadata/has_image_<k>`` flags are recorded but not trusted (in the Bridge sample they
  are 0 while three slots hold real images);
- ``steps/language_instruction`` -> ``meta.instruction``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, SimError
from sim.io.sanity import check_finite
from sim.io.tfrecord import iter_tfrecord, parse_example
from sim.transforms import mat_to_quat

log = logging.getLogger(__name__)

#: WidowX default gripper orientation (bridge_data_robot widowx_controller DEFAULT_ROTATION).
WIDOWX_DEFAULT_ROT = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
BRIDGE_ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
_IMAGE_PREFIX = "steps/observation/"
#: how far a gripper value may lie outside [0, 1] before it is an error (clipped, logged).
GRIPPER_SLACK = 0.05


def euler_xyz_to_mat(euler: np.ndarray) -> np.ndarray:
    """Extrinsic x-y-z Euler angles (..., 3) [rad] -> rotation matrices Rz @ Ry @ Rx (..., 3, 3)."""
    e = np.asarray(euler, dtype=np.float64)
    cr, sr = np.cos(e[..., 0]), np.sin(e[..., 0])
    cp, sp = np.cos(e[..., 1]), np.sin(e[..., 1])
    cy, sy = np.cos(e[..., 2]), np.sin(e[..., 2])
    m = np.empty(e.shape[:-1] + (3, 3))
    m[..., 0, 0] = cy * cp
    m[..., 0, 1] = cy * sp * sr - sy * cr
    m[..., 0, 2] = cy * sp * cr + sy * sr
    m[..., 1, 0] = sy * cp
    m[..., 1, 1] = sy * sp * sr + cy * cr
    m[..., 1, 2] = sy * sp * cr - cy * sr
    m[..., 2, 0] = -sp
    m[..., 2, 1] = cp * sr
    m[..., 2, 2] = cp * cr
    return m


def bridge_targets(
    state: np.ndarray, action: np.ndarray, apply_default_rot: bool = True
) -> np.ndarray:
    """Absolute EE targets (T, 7) from Bridge delta actions (see module docstring for the frame).

    Args:
        state: (T, 7) [x, y, z, roll, pitch, yaw, gripper] measured EE state (base frame).
        action: (T, >=6) [dx, dy, dz, droll, dpitch, dyaw, ...] deltas [m, rad].

    Returns:
        (T, 7) target pose per step: position [m] + quaternion w,x,y,z, robot base frame.
    """
    rot = euler_xyz_to_mat(action[:, 3:6]) @ euler_xyz_to_mat(state[:, 3:6])
    if apply_default_rot:
        rot = rot @ WIDOWX_DEFAULT_ROT
    return np.concatenate([state[:, :3] + action[:, :3], mat_to_quat(rot)], axis=1)


def _opening(where: str, key: str, g: np.ndarray, prov: dict[str, Any], name: str) -> np.ndarray:
    bad = (g < -GRIPPER_SLACK) | (g > 1.0 + GRIPPER_SLACK)
    if bad.any():
        row = int(np.argmax(bad))
        raise FormatError(
            f"{where}: '{key}' gripper value at step {row} is {float(g[row]):.4g}; expected an "
            f"opening in [0, 1] (+-{GRIPPER_SLACK})"
        )
    if g.size and (g.min() < 0.0 or g.max() > 1.0):
        prov[f"{name}_clipped"] = f"observed range [{g.min():.4g}, {g.max():.4g}] clipped to [0, 1]"
    return np.clip(g, 0.0, 1.0)


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes -> (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _tfrecord_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and ".tfrecord" in p.name)
        if not files:
            raise FormatError(f"{path}: no *.tfrecord* files; expected an RLDS dataset directory")
        return files
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    return [path]


def _dataset_name(files: list[Path]) -> str:
    info = files[0].parent / "dataset_info.json"
    if info.is_file():
        try:
            return str(json.loads(info.read_text()).get("name", "rlds"))
        except json.JSONDecodeError:
            log.warning("%s: not JSON; ignoring", info)
    return files[0].name.split("-")[0] or "rlds"


def _per_step(where: str, values: Any, key: str, T: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size % max(T, 1):
        raise FormatError(
            f"{where}: '{key}' has {arr.size} values; expected a multiple of the {T} steps"
        )
    return arr.reshape(T, -1)


def _image_slot(frames: list[bytes], T: int, where: str, key: str) -> str | None:
    """Why this camera slot is empty, or None when it holds images."""
    if len(frames) != T:
        raise FormatError(f"{where}: '{key}' has {len(frames)} images; expected {T} (one per step)")
    if all(len(b) == 0 for b in frames):
        return "no image data"
    if len(set(frames)) == 1:
        first = decode_image(frames[0])
        if first.min() == first.max():
            return f"every frame is one constant colour ({int(first.flat[0])}): padding"
    return None


def _loader(frames: list[bytes]) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return np.stack([decode_image(b) for b in frames])

    return load


def read_rlds(
    path: str | Path,
    fps: float = 5.0,
    robot: str = "widowx",
    state_layout: str | None = "bridge",
    apply_default_rot: bool = True,
    lazy_images: bool = True,
    episodes: Sequence[int] | None = None,
    on_error: Callable[[str, SimError], None] | None = None,
) -> list[Episode]:
    """Read RLDS episodes from a TFRecord file or a directory of TFRecord shards.

    Args:
        path: ``*.tfrecord*`` file or directory (shards read in name order).
        fps: step rate [Hz] (RLDS does not store it; BridgeData is 5 Hz).
        robot: robot name for ``meta.robot``.
        state_layout: ``"bridge"`` maps the 7-d state to EE pose + gripper; None ignores it.
        apply_default_rot: compose the Euler rotation with the WidowX default gripper rotation.
        lazy_images: decode JPEGs on first access instead of now.
        episodes: global episode indices (over all shards) to keep; default all.
        on_error: called with (source, error) for a record that fails to decode or map, which
            is then skipped; default: raise. Framing/CRC damage still raises (the rest of the
            shard cannot be located).

    Raises:
        FormatError: truncated/corrupt record (CRC), malformed Example, per-step features whose
            sizes do not match the step count, or a state that does not fit ``state_layout``.
    """
    files = _tfrecord_files(Path(path))
    name = _dataset_name(files)
    wanted = None if episodes is None else {int(i) for i in episodes}
    out, index = [], 0
    for file in files:
        for rec, payload in enumerate(iter_tfrecord(file)):
            if wanted is None or index in wanted:
                where = f"{file}: record {rec}"
                try:
                    try:
                        ex = parse_example(payload)
                    except FormatError as e:
                        raise FormatError(
                            f"{where}: {e}; expected a serialized tf.train.Example"
                        ) from e
                    ep = _episode(
                        ex,
                        where,
                        f"{file}#{rec}",
                        name,
                        fps,
                        robot,
                        state_layout,
                        apply_default_rot,
                        lazy_images,
                    )
                except SimError as e:
                    if on_error is None:
                        raise
                    on_error(f"{file}#{rec}", e)
                else:
                    out.append(ep)
            index += 1
    return out


def _episode(
    ex: dict[str, Any],
    where: str,
    source: str,
    task: str,
    fps: float,
    robot: str,
    state_layout: str | None,
    apply_default_rot: bool,
    lazy: bool,
) -> Episode:
    T = next(
        (len(ex[k]) for k in ("steps/is_first", "steps/reward", "steps/is_last") if k in ex), None
    )
    if T is None:
        raise FormatError(
            f"{where}: no 'steps/is_first' (or steps/reward, steps/is_last); "
            "expected RLDS step features to count the steps"
        )
    prov: dict[str, Any] = {"format": "rlds", "record": source}
    for k, v in ex.items():
        if k.startswith("episode_metadata/"):
            key = k.split("/", 1)[1]
            if isinstance(v, list):
                prov[key] = [b.decode("utf-8", "replace") for b in v]
            else:
                prov[key] = np.asarray(v).tolist()
            if isinstance(prov[key], list) and len(prov[key]) == 1:
                prov[key] = prov[key][0]
    ee, gripper = {}, {}
    if state_layout == "bridge":
        key = "steps/observation/state"
        if key not in ex:
            raise FormatError(
                f"{where}: missing '{key}'; expected the 7-d state [x, y, z, roll, "
                "pitch, yaw, gripper] (state_layout='bridge')"
            )
        state = _per_step(where, ex[key], key, T).astype(np.float64)
        if state.shape[1] != 7:
            raise FormatError(
                f"{where}: '{key}' has {state.shape[1]} values per step; expected "
                "7 [x, y, z, roll, pitch, yaw, gripper] (state_layout='bridge')"
            )
        check_finite(f"{where}: '{key}'", state, row_word="step")
        rot = euler_xyz_to_mat(state[:, 3:6])
        if apply_default_rot:
            rot = rot @ WIDOWX_DEFAULT_ROT
        ee["main"] = np.concatenate([state[:, :3], mat_to_quat(rot)], axis=1)
        gripper["main"] = _opening(where, key, state[:, 6], prov, "gripper")
        prov["state"] = "[x, y, z, roll, pitch, yaw, gripper]; euler extrinsic xyz (Rz Ry Rx)" + (
            " @ WidowX default rotation" if apply_default_rot else ""
        )
    action, action_names = None, []
    target, gripper_cmd = {}, {}
    if "steps/action" in ex:
        action = _per_step(where, ex["steps/action"], "steps/action", T).astype(np.float64)
        check_finite(f"{where}: 'steps/action'", action, row_word="step")
        if state_layout == "bridge" and action.shape[1] == 7:
            target["main"] = bridge_targets(state, action, apply_default_rot)
            gripper_cmd["main"] = _opening(where, "steps/action", action[:, 6], prov, "gripper_cmd")
            prov["target"] = (
                "absolute from delta actions: pos = state pos + d(xyz) (base frame); "
                "rot = Rxyz(d rpy) @ Rxyz(state rpy)"
                + (" @ WidowX default rotation" if apply_default_rot else "")
            )
        action_names = (
            BRIDGE_ACTION_NAMES
            if state_layout == "bridge" and action.shape[1] == 7
            else [f"a{j}" for j in range(action.shape[1])]
        )
    instruction = ""
    lang = ex.get("steps/language_instruction")
    if isinstance(lang, list) and lang:
        texts = [b.decode("utf-8", "replace") for b in lang]
        instruction = next((s for s in texts if s), "")
        if len(set(texts)) > 1:
            prov["instructions"] = sorted(set(texts))
    images, skipped = {}, {}
    for k in sorted(ex):
        if not (k.startswith(_IMAGE_PREFIX) and "image" in k.removeprefix(_IMAGE_PREFIX)):
            continue
        cam = k.removeprefix(_IMAGE_PREFIX).replace("/", "_")
        frames = ex[k]
        if not isinstance(frames, list):
            raise FormatError(f"{where}: '{k}' is numeric; expected encoded image bytes")
        why = _image_slot(frames, T, where, k)
        if why:
            skipped[cam] = why
            continue
        images[cam] = _loader(frames) if lazy else _loader(frames)()
    if skipped:
        prov["skipped_cameras"] = skipped
        log.info("%s: skipped empty camera slots %s", source, skipped)
    meta = EpisodeMeta(
        task=task,
        robot=robot,
        fps=float(fps),
        source=source,
        instruction=instruction,
        provenance=prov,
    )
    return Episode(
        meta=meta,
        time=np.arange(T) / float(fps),
        action_names=action_names,
        action=action,
        ee=ee,
        gripper=gripper,
        images=images,
        target=target,
        gripper_cmd=gripper_cmd,
    ).validate()
