#!/usr/bin/env bash
# Packs built executables, with the shared libraries a bare GPU machine lacks, into .device/ at
# the repository root (ignored by .gitignore), for scripts/gpu_check.sh to carry there:
#
#   scripts/gpu_bundle.sh EXECUTABLE...
#
#   .device/bin/     the executables
#   .device/lib/     every library they load that is neither the C/C++ runtime nor part of the
#                    CUDA stack (oneDNN, protobuf, Abseil, lp_solve, MPI, libjpeg-turbo, ...)
#   .device/env.sh   sourced there: LD_LIBRARY_PATH = .device/lib, the machine's CUDA toolkit,
#                    then the CUDA libraries of its Python packages (nvidia-*: cuDNN, NCCL,
#                    cuBLAS, the runtime), where its PyTorch finds them.
#
# The CUDA stack (driver, runtime, cuDNN, NCCL, cuBLAS...) is never packed: it is large and must
# be the GPU machine's own, matching its driver.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/gpu_bundle.sh EXECUTABLE..." >&2; exit 2; }
cd "$(dirname "$0")/.."
bundle=.device
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"

# Sonames that stay on the machine: glibc and the compiler runtime (the exact names), and the CUDA
# stack (every library whose name starts so: libcublas covers libcublasLt, libcudnn its parts).
system_runtime='^(linux-vdso|ld-linux[^.]*|libc|libm|libdl|librt|libpthread|libresolv|libgcc_s|libstdc\+\+)\.'
cuda_stack='^lib(cuda|nvidia|cudart|cudnn|nccl|cublas|curand|cufft|cusparse|cusolver|nvrtc|nvJitLink|cupti)'

for exe in "$@"; do
  [ -x "$exe" ] || { echo "gpu_bundle: $exe is not an executable (build it first)" >&2; exit 1; }
  cp "$exe" "$bundle/bin/"
  # ldd lines "soname => /path (address)": copy each resolved library not on the machine already.
  while read -r soname path; do
    [[ $soname =~ $system_runtime || $soname =~ $cuda_stack ]] && continue
    [ -e "$bundle/lib/$soname" ] || cp -L "$path" "$bundle/lib/$soname"
  done < <(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done

cat > "$bundle/env.sh" << 'EOF'
# Sourced on the GPU machine: the packed libraries first, then the machine's CUDA stack.
bundle_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python_cuda_libs=$(python3 -c '
import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({d for root in dirs for d in glob.glob(os.path.join(root, "nvidia", "*", "lib"))})))
' 2> /dev/null || true)
LD_LIBRARY_PATH=$bundle_dir/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${python_cuda_libs:+:$python_cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
export PATH=$bundle_dir/bin:$PATH
EOF
echo "gpu_bundle: $# executables and $(ls "$bundle/lib" | wc -l) libraries in $bundle ($(du -sm "$bundle" | cut -f1) MiB)"
