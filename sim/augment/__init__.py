"""Augmentation: pure transforms on arrays that turn source segments into new-scene targets.

- :mod:`sim.augment.segment` — segmentation of source episodes into object-centric subtasks
  (annotation file > subtask signals > gripper/EE heuristics).
- :mod:`sim.augment.annotations` — the annotation file (end frame per subtask).
- :mod:`sim.augment.transform` — SE(3) segment transforms, object symmetry, hand mirroring,
  :func:`~sim.augment.transform.object_anchored_targets` (per-segment anchors for replay).
- :mod:`sim.augment.select` — source selection per subtask (random, nearest object pose).
- :mod:`sim.augment.stitch` — minimum-jerk transits and per-arm stitching.
- :mod:`sim.augment.retime` — human-like time warp of plans, EE speed/acceleration caps,
  gripper speed.
- :mod:`sim.augment.noise` — EE position noise.

The ``demos`` plan source (:mod:`sim.sources.demos`) composes them; ``randomize.py`` (domain
randomization) and ``infer.py`` (grasp-frame inference) live here too.
"""
