#!/bin/sh
# Entrypoint of the facegate Triton image: give TensorRT an engine cache of its own per GPU
# model and TensorRT version, then run the command (tritonserver and its arguments).
#
# The model configs name one fixed cache path, $FACEGATE_MODELS_CACHE/trt (/models_cache/trt).
# A TensorRT engine is only valid for the GPU model and TensorRT version that built it, and a
# persistent cache outlives both (node pools change, images are upgraded). So the fixed path
# becomes a link to $FACEGATE_TRT_CACHE_ROOT/<gpu>/trt-<version>; a new GPU type or TensorRT
# release starts an empty directory and builds its engines once.
#
# FACEGATE_GPU_NAME and FACEGATE_TRT_VERSION override detection; FACEGATE_TRT_LIB_DIRS lists
# the folders searched for libnvinfer.so.<version>.
set -eu

cache_root="${FACEGATE_TRT_CACHE_ROOT:-/trt-cache}"
models_cache="${FACEGATE_MODELS_CACHE:-/models_cache}"
lib_dirs="${FACEGATE_TRT_LIB_DIRS:-/usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/tensorrt/lib /opt/tritonserver/backends/onnxruntime}"

# A directory name from free text: "NVIDIA H100 80GB HBM3" -> "NVIDIA_H100_80GB_HBM3".
slug() {
    printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_' | sed 's/__*/_/g; s/^_//; s/_$//'
}

gpu_name() {
    if [ -n "${FACEGATE_GPU_NAME:-}" ]; then
        printf '%s' "$FACEGATE_GPU_NAME"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        # The first visible GPU: a pod or container is given GPUs of one node, one model.
        nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1
    fi
}

trt_version() {
    if [ -n "${FACEGATE_TRT_VERSION:-}" ]; then
        printf '%s' "$FACEGATE_TRT_VERSION"
        return
    fi
    for dir in $lib_dirs; do
        for lib in "$dir"/libnvinfer.so.*.*.*; do
            [ -e "$lib" ] || continue
            printf '%s' "${lib##*/libnvinfer.so.}"
            return
        done
    done
    # Fall back on the image's own release (each NGC release ships one TensorRT).
    printf '%s' "${TRT_VERSION:-triton-${NVIDIA_TRITON_SERVER_VERSION:-unknown}}"
}

gpu="$(slug "$(gpu_name)")"
trt="$(slug "$(trt_version)")"
cache_dir="$cache_root/${gpu:-unknown-gpu}/trt-${trt:-unknown}"
if [ -d "$models_cache/trt" ] && [ ! -L "$models_cache/trt" ]; then
    # A volume mounted straight at the fixed path: the operator keyed it; leave it alone.
    echo "facegate: TensorRT engine cache is the mounted $models_cache/trt" >&2
else
    mkdir -p "$cache_dir" "$models_cache"
    ln -sfn "$cache_dir" "$models_cache/trt"
    echo "facegate: TensorRT engine cache $models_cache/trt -> $cache_dir" >&2
fi

exec "$@"
