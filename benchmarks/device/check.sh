#!/usr/bin/env bash
# Issue 8's speed check on a lent GPU machine: the generation benchmark with 2 cameras rendered
# by the GPU's EGL driver and the process tree pinned to 2 CPU cores (the target is episodes/min
# "on 2 cores"). Stage .whl/ and .gl/ first with benchmarks/device/prepare.sh, then on the device:
#   bash benchmarks/device/check.sh            (carry: .whl, .gl; EPISODES=60 by default)
# Writes gl.txt (which GL renderer drew the frames) and generate.txt to $OUT (or ./out).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out}
mkdir -p "$out"
if [ -d /usr/local/nvidia ] && [ -d .gl ]; then  # the device's NVIDIA EGL behind glvnd
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
python3 - <<'PY' 2>&1 | tee "$out/gl.txt" || exit 1
import sim  # noqa: F401  (sets up headless EGL)
from OpenGL import GL

from sim.render import make_gl_context

ctx = make_gl_context(84, 84)
ctx.make_current()
for name in ("GL_VENDOR", "GL_RENDERER", "GL_VERSION"):
    print(name, GL.glGetString(getattr(GL, name)).decode())
ctx.free()
PY
pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c 0,1)
else
  echo "taskset missing: the benchmark is NOT pinned to 2 cores" | tee -a "$out/gl.txt"
fi
"${pin[@]}" python3 benchmarks/generate.py --source demos --workers 1 2 \
  --episodes "${EPISODES:-60}" --breakdown 2>&1 | tee "$out/generate.txt"
