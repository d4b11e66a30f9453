#!/usr/bin/env bash
# Installs the Debian packages switchboard needs to build, run and test (chromium: the /docs
# browser test), and benchmark (g++ and gRPC C++: the gRPC benchmark's reference server).
# Idempotent, and silent when nothing is missing.
# Usage: scripts/deps.sh [build|test|bench]...
set -euo pipefail

build_pkgs=(gcc clang make cmake pkg-config libuv1-dev libnghttp2-dev libssl-dev
            zlib1g-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev
            libprotoc-dev)
test_pkgs=(libclang-rt-14-dev llvm curl nghttp2-client openssl python3 python3-pytest
           iproute2 procps nodejs chromium python3-grpcio python3-grpc-tools python3-protobuf
           python3-h2 python3-boto3)
bench_pkgs=(wrk nginx-light nghttp2-client g++ libgrpc++-dev protobuf-compiler-grpc python3-grpcio
            python3-grpc-tools)
node_pkgs=(nodejs)

want=()
[[ $# -eq 0 ]] && set -- build
for group in "$@"; do
  case "$group" in
    build) want+=("${build_pkgs[@]}") ;;
    test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    bench) want+=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
    node) want+=("${node_pkgs[@]}") ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench, node)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
# Sort and deduplicate so the message names each package once.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
