"""Readers and writers per format; :func:`read_episodes` reads any supported demo format.

Example::

    from sim.io import ReadReport, read_episodes

    report = ReadReport()
    episodes = read_episodes("demo.hdf5", on_bad_episode="skip", report=report)
    print(report.read, "read,", report.n_skipped, "skipped")
"""

from __future__ import annotations

from sim.errors import OutputWriteError
from sim.io.formats import FORMATS, detect_format, read_episodes
from sim.io.sanity import ReadReport, SanityError, SanityLimits, check_episode
from sim.io.writer import WRITER_FORMATS, Writer, open_writer

__all__ = [
    "FORMATS",
    "WRITER_FORMATS",
    "OutputWriteError",
    "Writer",
    "open_writer",
    "ReadReport",
    "SanityError",
    "SanityLimits",
    "check_episode",
    "detect_format",
    "read_episodes",
]
