"""Every command-line entry point; the only package that imports Hydra/OmegaConf.

Each entry point builds a structured config from the real frozen dataclasses, turns the Hydra
config into them and calls a plain function. Submodules are imported lazily so that importing
``sim.cli`` stays cheap.
"""

from __future__ import annotations


def generate_main() -> None:
    """`demoforge-generate`."""
    from sim.cli.generate import generate_main as main

    main()


def replay_main() -> None:
    """`demoforge-replay`."""
    from sim.cli.replay import replay_main as main

    main()


def bridge_main() -> None:
    """`demoforge-bridge`."""
    from sim.cli.bridge import bridge_main as main

    main()


def cost_main() -> None:
    """`demoforge-cost`."""
    from sim.cli.cost import cost_main as main

    main()


def sweep_summary_main() -> None:
    """`demoforge-sweep-summary`."""
    from sim.cli.sweep import sweep_summary_main as main

    main()


def train_eval_main() -> None:
    """`demoforge-train-eval`."""
    from sim.cli.train_eval import train_eval_main as main

    main()
