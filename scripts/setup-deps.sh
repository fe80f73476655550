#!/usr/bin/env bash
# Install the Debian 12 packages that sima builds and tests with.
# Idempotent; run as root (or with sudo). Safe to run again at any time.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libturbojpeg0-dev libjpeg62-turbo-dev
  libpng-dev
  libopenblas-openmp-dev
  libjansson-dev
  libcurl4-openssl-dev
  clang libclang-rt-14-dev
  python3
)

# Optional: a one-node Slurm for tests/cli/test_slurm_cluster.sh, which is
# skipped where these cannot be installed.
OPTIONAL=(slurm-wlm munge)

missing=() optional=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${OPTIONAL[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || optional+=("$p")
done

if [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    [ ${#missing[@]} -eq 0 ] && { echo "setup-deps: not installed (optional, needs root): ${optional[*]}"; exit 0; }
    echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#optional[@]} -gt 0 ]; then
  echo "setup-deps: installing ${optional[*]} (optional)"
  $SUDO apt-get install -y -q --no-install-recommends "${optional[@]}" ||
    echo "setup-deps: could not install ${optional[*]}; the tests that need them will be skipped"
fi
