"""Training loop for behaviour cloning: chunked action targets, L1/MSE loss, AdamW + cosine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sim.errors import ConfigError, SchemaError
from sim.learn.actions import EE, GRIPPER, TARGET, EEActionSpace
from sim.learn.data import BCData
from sim.learn.policy import ChunkPolicy, PolicyConfig

log = logging.getLogger(__name__)
LOSSES = ("l1", "mse")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        steps: gradient steps (at least); ``batch_size`` frames per step.
        epochs: if > 0, train for at least this many passes over the frames
            (steps = max(steps, ceil(epochs * frames / batch_size))): scales with the dataset.
        lr: peak learning rate (AdamW, linear warm-up over ``warmup`` steps, cosine to 0).
        weight_decay: AdamW weight decay.
        loss: "l1" or "mse" on normalized actions.
        obs_noise: std of Gaussian noise added to normalized observations (robustness to the
            states a policy drifts into; 0 = off).
        seed: torch seed (initial weights, batches, noise).
        threads: torch intra-op threads (0 = torch's default).
        log_every: steps between loss log lines.
    """

    steps: int = 5000
    epochs: float = 0.0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    loss: str = "l1"
    obs_noise: float = 0.0
    seed: int = 0
    threads: int = 1
    log_every: int = 500

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"learn.train.loss {self.loss!r} unknown; expected one of {LOSSES}")
        for key in ("steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"learn.train.{key} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ConfigError(f"learn.train.lr must be > 0, got {self.lr}")
        if self.epochs < 0:
            raise ConfigError(f"learn.train.epochs must be >= 0, got {self.epochs}")

    def total_steps(self, frames: int) -> int:
        """Gradient steps for a dataset of ``frames`` frames."""
        by_epochs = int(np.ceil(self.epochs * frames / self.batch_size)) if self.epochs else 0
        return max(self.steps, by_epochs)


def chunk_indices(data: BCData, chunk: int, history: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame i: target frame indices (N, chunk) i..i+chunk-1 clipped to its episode's last
    frame (the last action is held), and observation indices (N, history) i-history+1..i
    clipped to the episode's first frame."""
    n = len(data.episode)
    ends = np.repeat(data.starts + data.lengths - 1, data.lengths)
    starts = np.repeat(data.starts, data.lengths)
    i = np.arange(n)
    tgt = np.minimum(i[:, None] + np.arange(chunk)[None], ends[:, None])
    hist = np.maximum(i[:, None] - np.arange(history - 1, -1, -1)[None], starts[:, None])
    return tgt, hist


def relative_index(data: BCData) -> np.ndarray:
    """Per action column the observation column holding the same joint's position, else -1
    (grippers and anything without a matching ``observation.state`` column)."""
    rel = np.full(len(data.action_names), -1)
    if "observation.state" not in data.obs_keys:
        return rel
    offset = 0
    for k in data.obs_keys:
        if k == "observation.state":
            break
        offset += len(data.obs_names[k])
    cols = {n: offset + i for i, n in enumerate(data.obs_names["observation.state"])}
    for j, name in enumerate(data.action_names):
        if name in cols and not name.endswith("_gripper"):
            rel[j] = cols[name]
    return rel


def ee_space(data: BCData) -> EEActionSpace:
    """The EE action space of a dataset loaded with ``extra=EE_EXTRA``."""
    return EEActionSpace.from_features(list(data.extra), str(data.root / "meta" / "info.json"))


def action_targets(data: BCData, cfg: PolicyConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per frame the raw training target chunk (N, chunk, A) in the policy's action space, and
    per action column the observation column it is relative to (-1: none).

    ``joint``: dataset actions (joint targets [rad] + grippers), relative to the observed joint
    positions when ``cfg.relative``. ``ee``: :class:`EEActionSpace` actions (commanded EE pose
    relative to the EE pose observed at the episode's first frame or at the query frame, per
    ``cfg.ee_reference``; absolute gripper commands).
    """
    tgt, _ = chunk_indices(data, cfg.chunk, 1)
    if cfg.action_space == "ee":
        space = ee_space(data)
        for a in space.arms:
            if EE + a not in data.extra:
                raise SchemaError(
                    f"{data.root / 'meta' / 'info.json'}: the EE action space needs feature "
                    f"{EE + a!r} (observed EE pose) but the dataset has none"
                )
        target = {a: data.extra[TARGET + a][tgt] for a in space.arms}
        grip = {a: data.extra[GRIPPER + a][tgt][..., 0] for a in space.gripper_arms}
        first = np.repeat(data.starts, data.lengths)  # each frame's episode start
        ref = {
            a: data.extra[EE + a][first if cfg.ee_reference == "reset" else slice(None)]
            for a in space.arms
        }
        return space.encode(ref, target, grip), np.full(space.dim, -1)
    rel = relative_index(data) if cfg.relative else np.full(len(data.action_names), -1)
    base = np.where(rel >= 0, data.obs[:, np.maximum(rel, 0)], 0.0)
    return (data.action[tgt] - base[:, None, :]).astype(np.float32), rel


def make_policy(
    data: BCData,
    cfg: PolicyConfig,
    cameras: tuple[str, ...] = (),
    seed: int = 0,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
) -> ChunkPolicy:
    """A fresh policy (initial weights from ``seed``) with the dataset's normalization
    (observations: meta/stats.json; actions: the spread of the training targets over the chunks,
    absolute joint targets: meta/stats.json). ``targets``: :func:`action_targets` if computed."""
    torch.manual_seed(seed)
    s = data.obs_stats()
    s = type(s)(s.mean, np.maximum(s.std, cfg.obs_std_floor).astype(np.float32))
    a = data.stats["action"]
    if cfg.action_space == "joint" and not cfg.relative:
        return ChunkPolicy(cfg, s.mean, s.std, a.mean, a.std, cameras)
    chunks, rel = targets if targets is not None else action_targets(data, cfg)
    mean = chunks.mean((0, 1), dtype=np.float64)
    std = np.maximum(chunks.std((0, 1), dtype=np.float64), 1e-3)
    if cfg.action_space == "joint":
        mean, std = np.where(rel >= 0, mean, a.mean), np.where(rel >= 0, std, a.std)
    return ChunkPolicy(cfg, s.mean, s.std, mean, std, cameras, rel)


def train(
    data: BCData,
    policy: ChunkPolicy,
    cfg: TrainConfig,
    on_eval: Callable[[int, ChunkPolicy], None] | None = None,
    eval_every: int = 0,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, float]]:
    """Fit ``policy`` to the dataset; return the loss log [{step, loss, seconds}].

    ``on_eval(step, policy)`` is called every ``eval_every`` steps (and after the last step)
    with the policy in eval mode, for learning curves. ``targets``: :func:`action_targets`.
    """
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    _, hist = chunk_indices(data, policy.cfg.chunk, policy.history)
    chunks, _ = targets if targets is not None else action_targets(data, policy.cfg)
    obs_n = policy.normalize_obs(torch.as_tensor(data.obs))
    target_n = (torch.as_tensor(chunks) - policy.act_mean) / policy.act_std
    hist_t = torch.as_tensor(hist)
    steps = cfg.total_steps(len(data.episode))
    images = {c: torch.as_tensor(data.images[c]).movedim(-1, 1) for c in policy.cameras}
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        p = (step - cfg.warmup) / max(steps - cfg.warmup, 1)
        return cfg.lr * 0.5 * (1 + np.cos(np.pi * min(p, 1.0)))

    losses: list[dict[str, float]] = []
    n = len(data.episode)
    t0 = time.perf_counter()
    running = 0.0
    policy.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = torch.randint(0, n, (min(cfg.batch_size, max(n, 1)),), generator=gen)
        if policy.history > 1:
            o = obs_n[hist_t[idx]]
        else:
            o = obs_n[idx]
        if cfg.obs_noise:
            o = o + cfg.obs_noise * torch.randn(o.shape, generator=gen)
        imgs = None
        if policy.cameras:
            imgs = {
                c: (v[hist_t[idx]] if policy.history > 1 else v[idx]) for c, v in images.items()
            }
        pred = policy(o, imgs)
        err = pred - target_n[idx]
        loss = err.abs().mean() if cfg.loss == "l1" else (err**2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += float(loss.detach())
        done = step + 1
        if done % cfg.log_every == 0 or done == steps:
            k = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
            losses.append({"step": done, "loss": running / k, "seconds": time.perf_counter() - t0})
            log.info("step %d loss %.4f (%.1f s)", done, running / k, time.perf_counter() - t0)
            running = 0.0
        if on_eval is not None and ((eval_every and done % eval_every == 0) or done == steps):
            policy.eval()
            on_eval(done, policy)
            policy.train()
    policy.eval()
    return losses
