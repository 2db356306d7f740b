"""The one ``Writer`` protocol every dataset writer implements (LeRobot, robomimic, bridge).

Life cycle: open (fresh, ``overwrite`` or ``resume``) -> :meth:`Writer.add` one episode at a
time (staged on disk under ``<path>.partial``, memory stays one episode) -> optional
:meth:`Writer.stage_file` for reports and plots -> :meth:`Writer.finalize`, which builds the
final layout inside the staging area and publishes it with one rename, last. A crash at any
point leaves only ``<path>.partial``; reopening with ``resume=True`` continues it, and a crash
inside finalize is completed by the resumed run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from sim.episode import Episode


@runtime_checkable
class Writer(Protocol):
    """A staged, resumable, atomically published dataset writer."""

    partial: Path  # staging directory

    @property
    def num_staged(self) -> int:
        """Episodes staged so far (those found when resuming included)."""

    def add(self, episode: Episode) -> int:
        """Validate and stage one episode; return its index in the dataset."""

    def stage_file(self, relpath: str, data: bytes) -> Path:
        """Stage an extra file (e.g. ``meta/demoforge_report.json``) published with the data."""

    def finalize(self) -> Path:
        """Build the final layout in the staging area, rename it into place; return the path."""
