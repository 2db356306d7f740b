"""The house rules, read off the source: imports only point down the layers (DESIGN.md rooms),
Hydra/OmegaConf only inside sim/cli/. Imports under ``if TYPE_CHECKING:`` are type hints only
and don't count."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "sim"

#: Top-level module or package of sim -> layer. A module may import its own layer or lower.
LAYERS = {
    0: ("sim", "errors", "paths", "transforms", "episode", "report"),
    1: ("io", "render", "frustum", "quality", "cost"),
    2: ("model", "retarget"),
    3: ("control",),
    4: ("tasks", "augment"),
    5: ("rollout", "sources", "env", "thumbnails", "bridge", "cost_report", "sweep"),
    6: ("workers", "generate", "distributed", "replay", "learn"),
    7: ("cli",),
}
LAYER = {name: rank for rank, names in LAYERS.items() for name in names}


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sim"


def _imports(tree: ast.Module):
    """(module imported, line) for every import outside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno


def _modules():
    for path in sorted(SIM.rglob("*.py")):
        rel = path.relative_to(SIM.parent).with_suffix("")
        mod = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield path, mod, ast.parse(path.read_text(), filename=str(path))


def test_every_module_has_a_layer():
    unknown = sorted({_group(m) for _, m, _ in _modules()} - set(LAYER))
    assert not unknown, f"give these sim modules a layer in LAYERS: {unknown}"


def test_no_backwards_imports():
    bad = []
    for path, mod, tree in _modules():
        src = _group(mod)
        for target, line in _imports(tree):
            if not target.startswith("sim.") and target != "sim":
                continue
            dst = _group(target)
            if dst != src and LAYER.get(dst, -1) > LAYER[src]:
                bad.append(
                    f"{path.relative_to(SIM.parent)}:{line}: {src} (layer {LAYER[src]}) "
                    f"imports {target} (layer {LAYER[dst]})"
                )
    assert not bad, "backwards imports:\n" + "\n".join(bad)


def test_hydra_only_in_cli():
    bad = [
        f"{path.relative_to(SIM.parent)}:{line}: imports {target}"
        for path, mod, tree in _modules()
        if _group(mod) != "cli"
        for target, line in _imports(tree)
        if target.split(".")[0] in ("hydra", "omegaconf")
    ]
    assert not bad, "Hydra/OmegaConf outside sim/cli/:\n" + "\n".join(bad)


def test_the_check_sees_a_backwards_import(tmp_path):
    """The graph reader is not vacuous: a model -> tasks import in source text is found."""
    tree = ast.parse("from sim.tasks import make_task\nif TYPE_CHECKING:\n    import sim.cli\n")
    found = [t for t, _ in _imports(tree)]
    assert found == ["sim.tasks"]
