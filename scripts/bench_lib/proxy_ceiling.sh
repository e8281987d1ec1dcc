#!/usr/bin/env bash
# Pass-through ceiling of scripts/s3proxy.py vs s3rver direct.
# Starts s3rver and two proxies without latency or bandwidth limits (splice
# and --no-splice), uploads one object, then alternates 16 parallel ranged
# GETs (curl) direct / through each proxy for --rounds rounds, page cache
# warm. Prints the median MB/s of each path and the CPU seconds per GiB of
# s3rver and of the proxy.
# Usage: proxy_ceiling.sh [--rounds 5] [--size-mb 1024]   (env DSFS_S3RVER)
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=5
SIZE_MB=1024
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --size-mb) SIZE_MB=$2; shift ;;
    *) echo "usage: $0 [--rounds N] [--size-mb MB]" >&2; exit 2 ;;
  esac
  shift
done
S3RVER=${DSFS_S3RVER:-$REPO/.deps/node_modules/.bin/s3rver}
[[ -x $S3RVER ]] || { echo "s3rver not found at $S3RVER" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsfs-proxy-ceiling.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3PORT=$(port)
NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" \
  "$S3RVER" -d "$WORK/s3rver" -p "$S3PORT" -a 127.0.0.1 --configure-bucket demo --silent \
  >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
PIDS+=("$S3PID")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done

start_proxy() {  # start_proxy NAME ARGS... -> prints the port
  python3 "$REPO/scripts/s3proxy.py" --upstream "127.0.0.1:$S3PORT" --port 0 "${@:2}" \
    >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$WORK/$1.pid"
  for _ in $(seq 100); do grep -q '^listening on' "$WORK/$1.log" && break; sleep 0.1; done
}
start_proxy splice
start_proxy copy --no-splice
SPLICE_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/splice.log")
COPY_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/copy.log")
[[ -n $SPLICE_PORT && -n $COPY_PORT ]] || { echo "proxy did not start" >&2; exit 1; }

SIZE=$((SIZE_MB << 20))
head -c "$SIZE" /dev/urandom >"$WORK/obj"
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  -o /dev/null -T "$WORK/obj" "http://127.0.0.1:$S3PORT/demo/obj" || { echo "upload failed" >&2; exit 1; }
rm -f "$WORK/obj"

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # clock ticks
TCK=$(getconf CLK_TCK)
declare -A RATES
S3CPU=0 PXCPU=0 PXBYTES=0
for ((r = 1; r <= ROUNDS; r++)); do
  for path in direct splice copy; do
    case $path in
      direct) p=$S3PORT ;;
      splice) p=$SPLICE_PORT ;;
      copy) p=$COPY_PORT ;;
    esac
    s0=$(cpu "$S3PID")
    [[ $path == splice ]] && x0=$(cpu "$(cat "$WORK/splice.pid")")
    v=$("$REPO/scripts/bench_lib/ranged_get.sh" "http://127.0.0.1:$p" demo obj "$SIZE" 16) || v=""
    s1=$(cpu "$S3PID")
    if [[ $path == splice ]]; then
      x1=$(cpu "$(cat "$WORK/splice.pid")")
      PXCPU=$((PXCPU + x1 - x0))
      S3CPU=$((S3CPU + s1 - s0))
      PXBYTES=$((PXBYTES + SIZE))
    fi
    RATES[$path]+="$v "
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for path in direct splice copy; do
  # shellcheck disable=SC2086
  printf '%-22s median %7s MB/s   runs: %s\n' "$path" "$(median ${RATES[$path]})" "${RATES[$path]}"
done
awk -v p="$PXCPU" -v s="$S3CPU" -v b="$PXBYTES" -v t="$TCK" 'BEGIN {
  g = b / 1073741824
  printf "CPU s per GiB through the splice proxy: proxy %.2f, s3rver %.2f\n", p / t / g, s / t / g }'
