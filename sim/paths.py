"""Where the shipped MJCF (scenes/) and Hydra configs (conf/) live.

In a checkout they sit beside the package; in an installed wheel they are packaged as
``sim._scenes`` and ``sim._conf`` (see pyproject's package-dir mapping).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


@cache
def _locate(top: str, package: str) -> Path:
    checkout = _ROOT / top
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files(package)))


def scenes_dir() -> Path:
    """Directory holding robots/, rooms/ and props/ MJCF."""
    return _locate("scenes", "sim._scenes")


def conf_dir() -> Path:
    """Directory holding the Hydra configuration tree."""
    return _locate("conf", "sim._conf")
