#!/usr/bin/env bash
# Extra setup for the API tests that Debian packages do not cover, from PyPI: the official kubernetes
# Python client (Tests/BerthAPITests/PythonClientTests and the crash/HA write storms) and the docker SDK
# for Python (Tests/BerthDockerAPITests, against berth engine).
# Idempotent; CI calls it after scripts/install-deps.sh.
set -euo pipefail
if ! python3 -c 'import kubernetes' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes
fi
python3 -c 'import kubernetes; print("kubernetes python client", kubernetes.__version__)'
if ! python3 -c 'import docker' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check docker \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages docker
fi
python3 -c 'import docker; print("docker python SDK", docker.__version__)'
command -v kubectl >/dev/null || echo "warning: kubectl not found; the kubectl tests need kubectl 1.32 on PATH" >&2
