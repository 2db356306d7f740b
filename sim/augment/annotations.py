"""Annotation files: frame indices per subtask that override signals and heuristics.

Format (JSON or YAML)::

    {"episodes": {"0": {"grasp": 57}, "3": {"right:grasp": 60, "left:grasp": 62}}}

Keys of ``episodes`` are source episode indices; each maps a subtask label (or ``arm:label`` for
one arm) to the subtask's end frame (exclusive; the next subtask starts there). The last
subtask of each arm always ends at the episode end. Episodes not listed keep their signals.
"""

from __future__ import annotations

import json
from pathlib import Path

from sim.errors import FormatError, PlanError


def load_annotations(path: str | Path) -> dict[int, dict[str, int]]:
    """Read an annotation file -> {episode index: {label or arm:label: end frame}}."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise FormatError(f"annotation file {p}: cannot read ({e.strerror})") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parser error is a format error of this file
        raise FormatError(f"annotation file {p}: not valid {p.suffix or 'JSON'} ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("episodes"), dict):
        raise FormatError(f"annotation file {p}: expected a mapping with key 'episodes'")
    out: dict[int, dict[str, int]] = {}
    for key, marks in raw["episodes"].items():
        try:
            idx = int(key)
        except (TypeError, ValueError):
            raise FormatError(f"annotation file {p}: episode key {key!r} is not an index") from None
        if not isinstance(marks, dict):
            raise FormatError(f"annotation file {p}: episodes[{key!r}] must map label -> frame")
        for label, frame in marks.items():
            if not isinstance(frame, int) or isinstance(frame, bool):
                raise FormatError(
                    f"annotation file {p}: episodes[{key!r}][{label!r}] must be an integer "
                    f"frame, got {frame!r}"
                )
        out[idx] = dict(marks)
    return out


def check_annotation(
    marks: dict[str, int], length: int, where: str, labels: set[str]
) -> dict[str, int]:
    """Check end frames against an episode of ``length`` frames and the spec's ``labels``.

    Raises:
        PlanError(cause='annotation_out_of_range'): a frame outside [1, length - 1], or a key
            that names no subtask of the task (``where`` names the file and episode).
    """
    for key, frame in marks.items():
        label = key.split(":", 1)[-1]
        if label not in labels:
            raise PlanError(
                f"{where}: key {key!r} names no subtask of the task (subtasks: {sorted(labels)})",
                cause="annotation_out_of_range",
            )
        if not 1 <= frame <= length - 1:
            raise PlanError(
                f"{where}: key {key!r} frame {frame} is out of range; the episode has {length} "
                f"frames (expected 1..{length - 1})",
                cause="annotation_out_of_range",
            )
    return marks
