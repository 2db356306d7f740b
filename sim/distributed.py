"""Generation on a Ray cluster: attempt indices sharded over Ray tasks, merged in attempt order.

Each Ray task builds its scene (and camera rig, plan source, randomizer) once and runs a shard
of consecutive attempt indices; the driver yields the results in attempt order, so the dataset
is byte-identical to a single-process run with the same seed. A task whose worker process dies
is retried by Ray (``max_retries``): attempts are pure functions of (config, index), so a retry
recomputes exactly the lost results.

Across machines: ``ray start --head --port=6379`` on one, ``ray start --address=<head>:6379`` on
the others (same demoforge version and data paths everywhere), then
``demoforge-generate executor=ray ray_address=auto workers=<total CPUs>``.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.generate import GenerateConfig
    from sim.workers import AttemptResult

log = logging.getLogger(__name__)

#: Attempts per Ray task (one scene build per task).
SHARD = 4
#: Test hook: a path; the first task that finds it absent creates it and kills its own worker.
KILL_ONCE_ENV = "DEMOFORGE_RAY_KILL_ONCE"


def _run_shard(cfg: GenerateConfig, indices: list[int]) -> list[AttemptResult]:
    """Body of one Ray task: build the context once, run the attempts in order."""
    from sim.workers import local_context, run_attempt

    marker = os.environ.get(KILL_ONCE_ENV)
    if marker and not Path(marker).exists():
        Path(marker).write_text(f"killed worker pid {os.getpid()} at shard {indices[0]}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    ctx = local_context(cfg)
    return [run_attempt(ctx, i) for i in indices]


def _init(cfg: GenerateConfig):
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            "executor=ray needs Ray: pip install 'demoforge[ray]' (or set executor=local)"
        ) from e
    if not ray.is_initialized():
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "LP_NUM_THREADS", KILL_ONCE_ENV)
        }
        kw = {
            "runtime_env": {"env_vars": env},
            "log_to_driver": False,
            "include_dashboard": False,
            "logging_level": logging.WARNING,
        }
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, **kw)
        else:
            ray.init(num_cpus=cfg.workers, _node_ip_address="127.0.0.1", **kw)
    return ray


def ray_attempt_results(cfg: GenerateConfig, start: int, stop: int) -> Iterator[AttemptResult]:
    """Attempt results for ``start..stop-1`` in index order, computed by Ray tasks.

    At most ``workers + 1`` shards are in flight; stopping the iteration cancels the rest.
    """
    ray = _init(cfg)
    shard = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(_run_shard)
    pending: dict[int, object] = {}  # first index of the shard -> ObjectRef
    nxt = start
    try:
        for first in range(start, stop, SHARD):
            while nxt < stop and len(pending) < cfg.workers + 1:
                idx = list(range(nxt, min(nxt + SHARD, stop)))
                pending[nxt] = shard.remote(cfg, idx)
                nxt += len(idx)
            yield from ray.get(pending.pop(first))
    finally:
        for ref in pending.values():
            ray.cancel(ref, force=True)
