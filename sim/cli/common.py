"""What every entry point shares: typed schemas from frozen dataclasses, one error line."""

from __future__ import annotations

import logging
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sim.errors import SimError


def fail(e: SimError) -> None:
    """Print ``demoforge: error: <message>`` to stderr and exit with status 2."""
    print(f"demoforge: error: {e}", file=sys.stderr)
    sys.exit(2)


def structured(cls: type) -> DictConfig:
    """A Hydra schema node from a (frozen) dataclass: typed, closed to unknown keys, writable.

    OmegaConf marks frozen dataclasses read-only, which would forbid Hydra's overrides; the
    node is unfrozen level by level while its types and key set stay enforced.
    """
    node = OmegaConf.structured(cls)
    _unfreeze(node)
    return node


def _unfreeze(node: Any) -> None:
    OmegaConf.set_readonly(node, False)
    if isinstance(node, DictConfig):
        for key in node.keys():
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                _unfreeze(child)


def quiet_logs() -> None:
    """Silence third-party INFO chatter (PyOpenGL's acceleratesupport line, matplotlib)."""
    for name in ("OpenGL", "OpenGL.acceleratesupport", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)
