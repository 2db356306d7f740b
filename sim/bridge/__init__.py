"""Real-hardware bridge: robot protocol, wire transport, safety layer, drivers, record/replay.

Modules: ``protocol`` (Driver, Capabilities), ``wire`` (protocol v1 spec + codec), ``server`` /
``client`` (ZeroMQ), ``safety`` (SafetyLayer), ``loop`` (RateLoop), ``twin`` (MuJoCo twin),
``unitree_dds`` (Cyclone DDS LowCmd/LowState), ``lerobot_adapter``, ``record``, ``compare``,
``faults`` (link proxy, fuzzing), ``process`` (server in a subprocess), ``commands`` (CLI).
See docs/bridge.md. Nothing is imported here, so ``import sim.bridge`` stays cheap.
"""
