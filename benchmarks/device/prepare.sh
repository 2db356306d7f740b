#!/usr/bin/env bash
# Stage, on this (networked) machine, what benchmarks/device/check.sh needs on a lent GPU machine,
# which reaches no network: the Python packages its image lacks, as cp312 wheels in .whl/
# (same versions as installed here), and the glvnd/EGL loader .debs in .gl/ (device README).
# Both folders are git-ignored; name them in the device run's `carry`. Prints the sizes: the
# working tree plus both must stay under the device tool's 64 MiB.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

# what demoforge imports on the benchmark path that the device image (KINDS.md) does not hold
pkgs=(mujoco mujoco-core glfw PyOpenGL av gymnasium Farama-Notifications hydra-core omegaconf)
pins=$(python3 - "${pkgs[@]}" <<'PY'
import importlib.metadata as md
import sys
print(" ".join(f"{n}=={md.version(n)}" for n in sys.argv[1:]))
PY
)
rm -rf .whl && mkdir -p .whl
plat=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  plat+=(--platform "${p}_x86_64")
done
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${plat[@]}" -d .whl $pins
# hydra's parser runtime is published as a source archive only: build its pure-Python wheel
python3 -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$(python3 -c \
  'import importlib.metadata as m; print(m.version("antlr4-python3-runtime"))')"

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  rm -rf .gl && mkdir -p .gl /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" -qq update
  (cd .gl && apt-get "${o[@]}" -qq download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 \
    libglx0 libgles2)
else
  echo "no root apt-get here: .gl/ (EGL loader .debs) not staged" >&2
fi
du -sh .whl .gl 2>/dev/null || true
git ls-files -co --exclude-standard -z | du -ch --files0-from=- | tail -1 | sed 's/total/working tree/'
