"""Behaviour-cloning check: train a policy on a demoforge dataset, evaluate it closed-loop.

Needs the optional extra ``learn`` (torch). ``sim.learn.data`` and ``sim.learn.evaluate``'s
statistics work without torch; the policy, training and checkpoints need it.
"""

from __future__ import annotations
