"""Real-hardware bridge: robot protocol, wire transport, safety layer, drivers, record/replay.

Modules: ``protocol`` (Driver, Capabilities), ``wire`` (protocol v1 spec + codec), ``server`` /
``client`` (ZeroMQ), ``control`` (one controlling session), ``keys`` (CURVE keys, bind checks),
``audit`` (who did what), ``safety`` (SafetyLayer), ``loop`` (RateLoop), ``twin`` (MuJoCo twin
driver) + ``backends`` (Scene / MJCF backends), ``unitree_dds`` (Cyclone DDS driver) +
``unitree_codec`` (LowCmd/LowState layouts, CRC), ``lerobot_adapter``, ``record``, ``compare``,
``faults`` (link proxy, fuzzing), ``process`` (server in a subprocess), ``config`` (typed
configs), ``commands`` (the command functions; the CLI is ``sim.cli.bridge``). See
docs/bridge.md. Nothing is imported here, so ``import sim.bridge`` stays cheap.
"""
