#!/usr/bin/env bash
# Build what the GPU machine runs and pack it, here (the GPU machine has CUDA,
# NCCL and Open MPI but no parallel HDF5, libjpeg-turbo or network):
#   tests/device/pack.sh [BUILD_DIR]        (default build-gpu/)
# writes .device/sima-gpu.tar.xz: the tools, the GPU tests and benchmarks
# (Release, sm_90 only), and the shared libraries they need that such a
# machine lacks. tests/device/run-gpu.sh unpacks and runs it there; carry
# the .device folder with the call (it is excluded from git).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
pack=$root/.device
arch=${SIMA_GPU_ARCH:-90}

exclude=$(git -C "$root" rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSIMA_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
bins=("$build"/bin/sima-* "$build"/tests/*_gpu "$build"/tests/test_pairs_logic
      "$build"/perf/perf_model "$build"/perf/perf_dpo_shape)
for b in "${bins[@]}"; do
  [ -x "$b" ] && cp "$b" "$stage/bin/"
done
strip --strip-unneeded "$stage"/bin/* 2>/dev/null || true

# Shared libraries: everything the binaries load except the C library, the
# CUDA libraries and Open MPI (the GPU machine has its own, ABI 4.1).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libnccl|libmpi\.|libopen-pal|libopen-rte|libhwloc|libevent|libpmix|libucx|libuc[mpst])'
for b in "$stage"/bin/*; do ldd "$b"; done | awk '/=> \//{print $1, $3}' | sort -u |
while read -r name path; do
  if ! echo "$name" | grep -Eq "$skip"; then cp -L "$path" "$stage/lib/$name"; fi
done
mkdir -p "$pack"
tar -C "$stage" -cJf "$pack/sima-gpu.tar.xz" bin lib
ls -la "$pack/sima-gpu.tar.xz"
echo "packed $(ls "$stage/bin" | wc -l) programs and $(ls "$stage/lib" | wc -l) libraries"
