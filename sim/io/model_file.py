"""Find the MJCF a recorded demo names: inline XML, or a file beside the demo.

robosuite >= 1.2 stores the XML itself in ``data/demo_<i>/@model_file``; robosuite 1.0-era
releases store a file name (``model_1.xml``) and ship the XML in a ``models/`` folder next to
``demo.hdf5``. Some collection scripts stored an absolute path of the recording machine; only
its file name is then looked up here.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import FormatError


def is_inline_xml(value: str) -> bool:
    """True when ``value`` is MJCF text rather than a file name."""
    return value.lstrip().startswith("<")


def model_candidates(demo: Path, name: str, model_dir: str | Path | None = None) -> list[Path]:
    """Where a model file called ``name`` may lie, in lookup order (duplicates removed).

    Order: ``model_dir/<name>`` (when given), ``<demo folder>/models/<name>``,
    ``<demo folder>/<name>``, then the same three with only the file name of ``name``.
    """
    base = Path(name)
    names = [base] if base.name == str(base) else [base, Path(base.name)]
    out: list[Path] = []
    for n in names:
        if n.is_absolute():
            continue
        dirs = ([Path(model_dir)] if model_dir is not None else []) + [
            demo.parent / "models",
            demo.parent,
        ]
        for d in dirs:
            p = d / n
            if p not in out:
                out.append(p)
    return out


def resolve_model_xml(
    demo: Path, key: str, value: str, model_dir: str | Path | None = None
) -> tuple[str, str]:
    """MJCF text of a ``model_file`` attribute and where it came from.

    Args:
        demo: the demo file (file names are looked up beside it).
        key: the attribute's path in the file, for messages (``data/demo_1/@model_file``).
        value: the attribute: XML text or a file name.
        model_dir: an extra folder to look in first.

    Returns:
        (XML text, ``"inline"`` or the path it was read from).

    Raises:
        FormatError: a file name found in none of the places; the message lists every one.
    """
    if is_inline_xml(value):
        return value, "inline"
    name = value.strip()
    if not name:
        raise FormatError(f"{demo}: '{key}' is empty; expected MJCF XML or a model file name")
    places = model_candidates(demo, name, model_dir)
    for p in places:
        if p.is_file():
            try:
                return p.read_text(encoding="utf-8"), str(p)
            except (OSError, UnicodeDecodeError) as e:
                raise FormatError(f"{demo}: '{key}' names {p}, which cannot be read ({e})") from e
    raise FormatError(
        f"{demo}: '{key}' names the model file {name!r}, found in none of: "
        f"{', '.join(map(str, places))}; expected inline MJCF XML or that file in one of these "
        "places (pass model_dir= to look elsewhere)"
    )
