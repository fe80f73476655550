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

# Optional, installed only when run as root (as in CI): a one-node Slurm for
# tests/cli/test_slurm_cluster.sh, which is skipped without it.
OPTIONAL=(slurm-wlm munge)
optional_install() {  # apt-get install, updating the package lists if that fails
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }
}
if ! dpkg-query -W -f='${Status}\n' "${OPTIONAL[@]}" 2>/dev/null | grep -c "install ok installed" | grep -qx "${#OPTIONAL[@]}"; then
  if [ "$(id -u)" -eq 0 ] && optional_install "${OPTIONAL[@]}"; then
    echo "setup-deps: installed ${OPTIONAL[*]} (optional)"
  else
    echo "setup-deps: ${OPTIONAL[*]} not installed (optional: as root, apt-get install ${OPTIONAL[*]})"
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
