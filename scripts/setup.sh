#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs exactly the Debian 12 packages fivefold needs. Idempotent; runs as root or via sudo.
#   scripts/setup.sh            # install
#   scripts/setup.sh --print    # list the packages and exit
set -euo pipefail

PACKAGES=(
  build-essential cmake git             # compiler and build
  openmpi-bin libopenmpi-dev            # MPI: mpirun, mpicxx, libmpi
  libeigen3-dev                         # CPU ops
  libgtest-dev libgmock-dev             # tests
  libbenchmark-dev                      # bench/
  libcli11-dev                          # command line (docs/reference.md)
  nlohmann-json3-dev                    # --json summary, --trace, config.json
  doxygen graphviz                      # docs/ (docs target and its ctest)
  python3 python3-numpy python3-matplotlib   # .npy fixture, notebooks' plots
  python3-nbformat python3-nbconvert python3-ipykernel jupyter-nbconvert  # notebooks
)

if [[ "${1:-}" == "--print" ]]; then printf '%s\n' "${PACKAGES[@]}"; exit 0; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then echo "setup: all ${#PACKAGES[@]} packages already installed"; exit 0; fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
