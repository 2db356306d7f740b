"""Behaviour-cloning policies (torch): an MLP that predicts a chunk of future actions.

Inputs are normalized with the dataset's stats inside the module, so a checkpoint carries
everything needed to act: raw observation vector [dataset units] (+ uint8 images) in, raw
actions out: in the ``ee`` action space EE targets relative to the observed EE poses + gripper
openings (:mod:`sim.learn.actions`, decoded and run through IK by the evaluator); in the
``joint`` space absolute joint targets [rad] + gripper openings [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sim.errors import ConfigError
from sim.learn.actions import REFERENCES, SPACES

KINDS = ("mlp", "rnn")


@dataclass(frozen=True)
class PolicyConfig:
    """Policy architecture.

    Attributes:
        kind: "mlp" (feed-forward, action chunks) or "rnn" (GRU over the last ``history``
            observations, then the same chunk head).
        hidden: width of hidden layers; ``layers`` their number.
        chunk: actions predicted per query (action chunking); ``execute`` of them are run
            open-loop before the policy is queried again (1 <= execute <= chunk).
        history: observations fed to the rnn (ignored by the mlp).
        dropout: dropout probability in the hidden layers.
        image_features: CNN output width per camera (used only with cameras).
        action_space: "ee" (commanded EE poses relative to the observed EE poses + gripper
            commands, executed through IK as the generator does) or "joint" (joint targets).
        ee_reference: (EE space) the pose EE targets are relative to: "reset" (the EE pose
            after the scene reset: drift-free absolute targets) or "query" (the EE pose
            observed when the chunk is predicted).
        obs_std_floor: lower bound of the observation std used for normalization (dataset
            units): a column nearly constant in the data (a held arm) must not turn a small
            deviation at test time into a huge input.
        relative: (joint space) predict joint targets relative to the joint positions
            observed at query time (action[t+k] - qpos[t]; grippers stay absolute). Finer
            than absolute targets normalized by their whole-dataset spread.
        ensemble: temporal ensembling (ACT): > 0 queries every control step and averages all
            chunks' predictions for the step with weights exp(-ensemble * i), i = 0 the oldest
            (smooth joint targets; ``execute`` is then ignored). 0 = off: run ``execute``
            actions of each chunk open-loop.
    """

    kind: str = "mlp"
    hidden: int = 512
    layers: int = 3
    chunk: int = 10
    execute: int = 5
    history: int = 4
    dropout: float = 0.0
    image_features: int = 64
    relative: bool = True
    ensemble: float = 0.0
    action_space: str = "ee"
    ee_reference: str = "reset"
    obs_std_floor: float = 0.01

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"learn.policy.kind {self.kind!r} unknown; expected one of {KINDS}")
        if self.action_space not in SPACES:
            raise ConfigError(
                f"learn.policy.action_space {self.action_space!r} unknown; expected one of {SPACES}"
            )
        if self.ee_reference not in REFERENCES:
            raise ConfigError(
                f"learn.policy.ee_reference {self.ee_reference!r} unknown; expected one of "
                f"{REFERENCES}"
            )
        for key in ("hidden", "layers", "chunk", "execute", "history", "image_features"):
            if getattr(self, key) < 1:
                raise ConfigError(f"learn.policy.{key} must be >= 1, got {getattr(self, key)}")
        if self.execute > self.chunk:
            raise ConfigError(
                f"learn.policy.execute ({self.execute}) must be <= chunk ({self.chunk})"
            )
        if self.ensemble < 0:
            raise ConfigError(f"learn.policy.ensemble must be >= 0, got {self.ensemble}")
        if self.obs_std_floor <= 0:
            raise ConfigError(f"learn.policy.obs_std_floor must be > 0, got {self.obs_std_floor}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"learn.policy.dropout must be in [0, 1), got {self.dropout}")


class SmallCNN(nn.Module):
    """(B, 3, H, W) uint8-range image -> (B, out) features: 3 strided convs + spatial mean."""

    def __init__(self, out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2),
            nn.ReLU(),
        )
        self.head = nn.Linear(32, out)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.net(img.float() / 255.0 - 0.5)
        return self.head(x.mean(dim=(2, 3)))


def _mlp(i: int, hidden: int, layers: int, out: int, dropout: float) -> nn.Sequential:
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(i, hidden), nn.GELU()]
        if dropout:
            mods.append(nn.Dropout(dropout))
        i = hidden
    mods.append(nn.Linear(i, out))
    return nn.Sequential(*mods)


class ChunkPolicy(nn.Module):
    """Observation (+ images) -> ``chunk`` future actions.

    Args:
        cfg: architecture.
        obs_mean, obs_std: (D,) normalization of the observation vector.
        act_mean, act_std: (A,) normalization of actions.
        cameras: camera names of image inputs (each through its own SmallCNN).
        rel_index: (A,) per action column the observation column it is relative to, or -1
            (absolute); all -1 unless ``cfg.relative``.
    """

    def __init__(
        self,
        cfg: PolicyConfig,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        act_mean: np.ndarray,
        act_std: np.ndarray,
        cameras: tuple[str, ...] = (),
        rel_index: np.ndarray | None = None,
    ):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.cameras = tuple(cameras)
        d, a = len(obs_mean), len(act_mean)
        self.obs_dim, self.act_dim = d, a
        for name, v in (
            ("obs_mean", obs_mean),
            ("obs_std", obs_std),
            ("act_mean", act_mean),
            ("act_std", act_std),
        ):
            self.register_buffer(name, torch.as_tensor(np.asarray(v, np.float32)))
        rel = np.full(a, -1) if rel_index is None else np.asarray(rel_index)
        self.register_buffer("rel_index", torch.as_tensor(rel, dtype=torch.long))
        self.cnns = nn.ModuleDict({c: SmallCNN(cfg.image_features) for c in self.cameras})
        width = d + cfg.image_features * len(self.cameras)
        if cfg.kind == "rnn":
            self.rnn = nn.GRU(width, cfg.hidden, batch_first=True)
            width = cfg.hidden
        self.head = _mlp(width, cfg.hidden, cfg.layers, cfg.chunk * a, cfg.dropout)

    @property
    def history(self) -> int:
        return self.cfg.history if self.cfg.kind == "rnn" else 1

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def action_base(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., D) raw observation -> (..., A) the values relative actions are added to."""
        mask = self.rel_index >= 0
        return obs[..., self.rel_index.clamp(min=0)] * mask

    def forward(self, obs_n: torch.Tensor, images: dict[str, torch.Tensor] | None = None):
        """Normalized obs (B, D) or (B, H, D) for the rnn -> normalized actions (B, chunk, A).

        Images: camera -> (B, 3, h, w) (or (B, H, 3, h, w) for the rnn), values 0..255.
        """
        x = obs_n
        if self.cameras:
            feats = []
            for c in self.cameras:
                img = images[c]
                if img.dim() == 5:
                    b, h = img.shape[:2]
                    feats.append(self.cnns[c](img.flatten(0, 1)).view(b, h, -1))
                else:
                    feats.append(self.cnns[c](img))
            x = torch.cat([x, *feats], dim=-1)
        if self.cfg.kind == "rnn":
            if x.dim() == 2:
                x = x[:, None]
            x = self.rnn(x)[0][:, -1]
        return self.head(x).view(-1, self.cfg.chunk, self.act_dim)

    @torch.no_grad()
    def act(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Raw observation(s) -> raw action chunk (chunk, A) [dataset units].

        ``obs`` is (D,) or, for the rnn, (H, D) oldest first; images (h, w, 3) uint8 per camera
        (or (H, h, w, 3)).
        """
        raw = torch.as_tensor(np.asarray(obs, np.float32))
        o = self.normalize_obs(raw)[None]
        imgs = None
        if self.cameras:
            imgs = {
                c: torch.as_tensor(np.asarray(images[c])).movedim(-1, -3)[None]
                for c in self.cameras
            }
        out = self.forward(o, imgs)[0]
        base = self.action_base(raw if raw.dim() == 1 else raw[-1])
        return (out * self.act_std + self.act_mean + base).numpy().astype(np.float64)
