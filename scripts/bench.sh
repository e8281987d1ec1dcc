#!/usr/bin/env bash
# dsfs benchmark: dsfs vs s3fs vs rclone against an emulated origin.
#
# Starts s3rver (own temp dir, free port) and scripts/s3proxy.py in front of
# it as the origin emulator (default: 20 ms latency, 64 MiB/s per
# connection), uploads one big object and N shards, then mounts each client
# against the proxy and measures, step "dd": cold / 4-shard / warm / hot
# sequential reads, random 4 KiB reads on a cached shard; step "model": P
# processes each mmap one safetensors-layout shard and copy every tensor out
# of the mapping in header order (as safetensors' load_file), cold (fresh
# cache dir, page cache dropped), warm (after a remount, page cache dropped)
# and hot (page cache), and the same files on local disk; each daemon's
# peak RSS and the GETs the origin served for each cold read; step "write":
# a sequential write of the big file (dd bs=1M) through the mount, timed
# until the object is complete in the bucket (close for dsfs and s3fs;
# rclone uploads after close), against bench_lib/s3sink.py (a threaded
# origin that ingests faster than s3rver) behind its own s3proxy.py with the
# same emulation; each written object's sha256 is checked by a GET from the
# sink. Steps "slowdisk" and "twosource" (dsfs only, not in the default set,
# bench_lib/slowdisk.sh): dsfs's cache on a throttled loop-device ext4, and
# the share (fallback=) on another one. Origin (read and multipart PUT) and
# local-disk ceilings are measured in the same run. Prints the tables; see
# docs/BENCH.md for what each column means.
#
# Usage: scripts/bench.sh [--runs N] [--quick] [--plot] [--clients "dsfs s3fs rclone"]
#                         [--steps "dd model write slowdisk twosource"] [--torch]
#                         [--latency-ms MS] [--bw-per-conn RATE] [--proxy-args "..."]
#                         [--workdir DIR] [--keep] [--cpu]
# --torch: the model step once more through torch (torch.frombuffer over the
#          mapping, then a copy), with python3 or /usr/bin/python3, whichever
#          imports torch (Debian: apt-get install python3-torch).
# Client dsfs0 is dsfs from the binary DSFS_BIN0 (e.g. a baseline build), so
# two builds are compared in one run: --clients "dsfs0 dsfs s3fs rclone".
# Env: DSFS_BIN, DSFS_BIN0, DSFS_S3RVER, BENCH_SIZE_MB (1024), BENCH_SHARD_MB (256),
#      BENCH_SHARDS (4), BENCH_RAND_COUNT (20000), BENCH_MODEL_PROCS (4),
#      BENCH_MODEL_SHARD_MB (512; --quick 128), BENCH_DSFS_OPTS,
#      BENCH_S3FS_OPTS, BENCH_RCLONE_ARGS (extra options per client),
#      BENCH_TIMEOUT (seconds per read step, 600), BENCH_DSFS_CACHE_OPT (name of
#      dsfs's cache dir option, "cache_dir"; empty = no disk cache),
#      BENCH_SINK_DIR (where s3sink keeps objects; /dev/shm if it has room),
#      BENCH_SLOWDISK_BPS (cache disk throttle, B/s; default origin ceiling / 4),
#      BENCH_SHARE_BPS (share disk throttle, B/s; default the origin ceiling).
# Time: each client and run reads big 3x, the shards once, the model 3x;
# shrink with --quick, --runs, --steps and the sizes above.
# Needs root (drop_caches, FUSE mounts).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB="$REPO/scripts/bench_lib"
RUNS=3
QUICK=0
PLOT=0
KEEP=0
CPU=0
TORCH=0
STEPS="dd model write"
CLIENTS="dsfs s3fs rclone"
LATENCY_MS=20
BW_PER_CONN=64M
PROXY_ARGS=""
WORKROOT=${TMPDIR:-/tmp}

usage() { sed -n '2,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --quick) QUICK=1 ;;
    --plot) PLOT=1 ;;
    --keep) KEEP=1 ;;
    --cpu) CPU=1 ;;
    --clients) CLIENTS=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --torch) TORCH=1 ;;
    --latency-ms) LATENCY_MS=$2; shift ;;
    --bw-per-conn) BW_PER_CONN=$2; shift ;;
    --proxy-args) PROXY_ARGS=$2; shift ;;
    --workdir) WORKROOT=$2; shift ;;
    -h|--help) usage 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage 2 ;;
  esac
  shift
done
if ((QUICK)); then
  RUNS=1
  : "${BENCH_SIZE_MB:=256}" "${BENCH_SHARD_MB:=64}" "${BENCH_RAND_COUNT:=5000}" "${BENCH_MODEL_SHARD_MB:=128}"
fi
SIZE_MB=${BENCH_SIZE_MB:-1024}
SHARD_MB=${BENCH_SHARD_MB:-256}
NSHARDS=${BENCH_SHARDS:-4}
RAND_COUNT=${BENCH_RAND_COUNT:-20000}
STEP_TIMEOUT=${BENCH_TIMEOUT:-600}
MODEL_PROCS=${BENCH_MODEL_PROCS:-4}
MODEL_MB=${BENCH_MODEL_SHARD_MB:-512}
has_step() { [[ " $STEPS " == *" $1 "* ]]; }
for st in $STEPS; do
  [[ " dd model write slowdisk twosource " == *" $st "* ]] || { echo "bench.sh: unknown step $st" >&2; exit 2; }
done
DSFS_CACHE_OPT=${BENCH_DSFS_CACHE_OPT-cache_dir}  # set empty: mount dsfs without a disk cache
DSFS_BIN=${DSFS_BIN:-$REPO/build/tools/dsfs}
S3RVER=${DSFS_S3RVER:-$REPO/.deps/node_modules/.bin/s3rver}
BUCKET=demo
KEY=S3RVER
SECRET=S3RVER

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -w /proc/sys/vm/drop_caches ]] || die "needs root: cannot write /proc/sys/vm/drop_caches"
[[ -x $S3RVER ]] || die "s3rver not found at $S3RVER (set DSFS_S3RVER or run scripts/setup.sh)"
command -v fusermount3 >/dev/null || die "fusermount3 missing"

WORK=$(mktemp -d "$WORKROOT/dsfs-bench.XXXXXX") || die "mktemp failed"
OUT="$REPO/bench-out"
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
PIDS=()      # long-lived processes we started (s3rver, proxy)
CLIENT_PID=""  # the mount daemon currently running, if any
MOUNTS=()    # every mountpoint we may have mounted

cleanup() {
  local m p
  for m in "${MOUNTS[@]}"; do
    mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }
  done
  for p in $CLIENT_PID "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  sleep 0.5
  for p in $CLIENT_PID "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  declare -F loopfs_cleanup >/dev/null && loopfs_cleanup
  [[ -n ${SINK_DIR:-} ]] && rm -rf "$SINK_DIR"
  if ((KEEP)); then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v a="$2" -v c="$3" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }'; }
median() {  # median of the numeric args; FAILED if none
  (($#)) || { echo FAILED; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
if ((CPU)); then  # CPU seconds per process during each cold read, see docs/BENCH.md
  # shellcheck source-path=SCRIPTDIR source=bench_lib/cpu_account.sh disable=SC1091
  source "$LIB/cpu_account.sh"
else
  cpu_begin() { :; }
  cpu_end() { :; }
fi
s3curl() {
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# ---- origin: s3rver + proxy ------------------------------------------------
S3PORT=$(free_port)
mkdir -p "$WORK/s3rver" "$WORK/data"
# s3rver makes ListObjectsV2 continuation tokens with DES, which Node's
# OpenSSL 3 only offers through the legacy provider (else: 500 on any
# truncated listing).
NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" \
  "$S3RVER" -d "$WORK/s3rver" -p "$S3PORT" -a 127.0.0.1 --configure-bucket "$BUCKET" --silent \
  >"$WORK/s3rver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break
  sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" || die "s3rver did not start (see $WORK/s3rver.log)"

# shellcheck disable=SC2086
python3 "$REPO/scripts/s3proxy.py" --upstream "127.0.0.1:$S3PORT" --port 0 \
  --latency-ms "$LATENCY_MS" --bw-per-conn "$BW_PER_CONN" $PROXY_ARGS >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q '^listening on' "$WORK/proxy.log" && break
  sleep 0.1
done
PPORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/proxy.log")
[[ -n $PPORT ]] || die "proxy did not start: $(cat "$WORK/proxy.log")"
URL="http://127.0.0.1:$PPORT"
log "s3rver :$S3PORT, proxy $URL (latency ${LATENCY_MS} ms, ${BW_PER_CONN}/conn $PROXY_ARGS)"
MOUNT_URL=$URL   # the origin the next mount uses
READY_NAME=big   # a mount is ready once this name shows in it

wait_listening() {  # wait_listening LOG -> the port printed as "listening on 127.0.0.1:PORT"
  local i
  for ((i = 0; i < 100; i++)); do
    grep -qs "^listening on" "$1" && break
    sleep 0.1
  done
  sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$1"
}

# ---- write origin: s3sink + its own proxy ----------------------------------
SINK_DIR=""
if has_step write; then
  SINK_DIR=${BENCH_SINK_DIR:-}
  if [[ -z $SINK_DIR ]]; then  # tmpfs when it holds 3 copies of big
    if (($(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }' || echo 0) > 3 * (${BENCH_SIZE_MB:-1024} << 10))); then
      SINK_DIR=$(mktemp -d /dev/shm/dsfs-bench-sink.XXXXXX)
    else
      SINK_DIR=$WORK/sink
    fi
  fi
  python3 "$LIB/s3sink.py" --dir "$SINK_DIR" --bucket "$BUCKET" >"$WORK/sink.log" 2>&1 &
  PIDS+=($!)
  SINK_PID=$!
  SINKPORT=$(wait_listening "$WORK/sink.log")
  [[ -n $SINKPORT ]] || die "s3sink did not start: $(cat "$WORK/sink.log")"
  # shellcheck disable=SC2086
  python3 "$REPO/scripts/s3proxy.py" --upstream "127.0.0.1:$SINKPORT" --port 0 \
    --latency-ms "$LATENCY_MS" --bw-per-conn "$BW_PER_CONN" $PROXY_ARGS >"$WORK/sinkproxy.log" 2>&1 &
  PIDS+=($!)
  SINK_PROXY_PID=$!
  SPPORT=$(wait_listening "$WORK/sinkproxy.log")
  [[ -n $SPPORT ]] || die "sink proxy did not start: $(cat "$WORK/sinkproxy.log")"
  SINK_URL="http://127.0.0.1:$SPPORT"
  printf 'ready\n' | curl -sf -T - -o /dev/null "http://127.0.0.1:$SINKPORT/$BUCKET/ready" || die "sink: PUT failed"
  log "write origin: s3sink :$SINKPORT (objects in $SINK_DIR), proxy $SINK_URL"
fi

# ---- data ------------------------------------------------------------------
SIZE=$((SIZE_MB << 20))
SHARD=$((SHARD_MB << 20))
log "uploading big ($SIZE_MB MiB) and $NSHARDS x $SHARD_MB MiB shards"
head -c "$SIZE" /dev/urandom >"$WORK/data/big" || die "cannot write data"
s3curl -o /dev/null -T "$WORK/data/big" "http://127.0.0.1:$S3PORT/$BUCKET/big" || die "upload big failed"
SHARDS=()
for ((i = 0; i < NSHARDS; i++)); do
  name=$(printf 'model-%05d-of-%05d.safetensors' $((i + 1)) "$NSHARDS")
  head -c "$SHARD" /dev/urandom >"$WORK/data/shard"
  s3curl -o /dev/null -T "$WORK/data/shard" "http://127.0.0.1:$S3PORT/$BUCKET/$name" || die "upload $name failed"
  SHARDS+=("$name")
done
rm -f "$WORK/data/shard"
MODEL_FILES=()  # keys under model/, one per loader process
MODEL_BYTES=0   # their total size (CPU accounting of a load)
if has_step model; then
  log "writing and uploading $MODEL_PROCS safetensors-layout shards of $MODEL_MB MiB"
  mkdir -p "$WORK/data/model"
  for ((i = 0; i < MODEL_PROCS; i++)); do
    name=$(printf 'model-%05d-of-%05d.safetensors' $((i + 1)) "$MODEL_PROCS")
    python3 "$LIB/safetensors_load.py" make "$WORK/data/model/$name" --size-mb "$MODEL_MB" --seed "$i" ||
      die "cannot write $name"
    s3curl -o /dev/null -T "$WORK/data/model/$name" "http://127.0.0.1:$S3PORT/$BUCKET/model/$name" ||
      die "upload model/$name failed"
    MODEL_FILES+=("$name")
    MODEL_BYTES=$((MODEL_BYTES + $(stat -c %s "$WORK/data/model/$name")))
  done
fi
TORCH_PY=""  # a python3 that imports torch (Debian's python3-torch is for /usr/bin/python3)
if ((TORCH)); then
  for py in python3 /usr/bin/python3; do
    "$py" -c 'import torch' 2>/dev/null && { TORCH_PY=$py; break; }
  done
  [[ -n $TORCH_PY ]] || { log "--torch: no python3 here imports torch; the torch variant is skipped"; TORCH=0; }
fi
printf '%s\n' "$KEY:$SECRET" >"$WORK/passwd"
chmod 600 "$WORK/passwd"

# GETs the origin has served (the proxy's counter), "?" if it cannot say.
origin_gets() {
  curl -sf "$URL/__proxy/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"]["get"])' 2>/dev/null ||
    echo "?"
}
gets_since() { [[ $1 == "?" || $2 == "?" ]] && echo "?" || echo $(($2 - $1)); }

# model_load DIR [--torch] -> aggregate MB/s of MODEL_PROCS loaders, loader i
# on shard i, started together (each imports first, then waits for the clock).
model_load() {
  local dir=$1 extra=${2:-} i t0 end=0 total=0 rc=0 pids=() out py=python3
  [[ -n $extra ]] && py=$TORCH_PY
  # torch takes seconds to import on a busy machine.
  t0=$(awk -v n="$(now)" -v d="$([[ -n $extra ]] && echo 15 || echo 1.5)" 'BEGIN { printf "%.3f", n + d }')
  for ((i = 0; i < MODEL_PROCS; i++)); do
    # shellcheck disable=SC2086  # extra is empty or one flag
    timeout "$STEP_TIMEOUT" "$py" "$LIB/safetensors_load.py" load "$dir/${MODEL_FILES[i]}" \
      --start-at "$t0" $extra >"$WORK/load.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  ((rc == 0)) || { log "model load in $dir failed: $(cat "$WORK"/load.* | grep -v '^bytes=' | head -2)"; return 1; }
  for ((i = 0; i < MODEL_PROCS; i++)); do
    out=$(<"$WORK/load.$i")
    total=$((total + $(sed 's/.*bytes=\([0-9]*\).*/\1/' <<<"$out")))
    end=$(awk -v a="$end" -v b="$(sed 's/.*end=\([0-9.]*\).*/\1/' <<<"$out")" 'BEGIN { print (b > a ? b : a) }')
  done
  mbps "$total" "$t0" "$end"
}

# ---- ceilings --------------------------------------------------------------
origin_runs=() disk_runs=()
for ((r = 1; r <= RUNS; r++)); do
  drop_caches
  cpu_begin
  v=$("$LIB/ranged_get.sh" "$URL" "$BUCKET" big "$SIZE" 16) && { cpu_end ceiling "$SIZE"; origin_runs+=("$v"); }
  drop_caches
  a=$(now)
  dd if="$WORK/data/big" of=/dev/null bs=1M iflag=direct status=none && disk_runs+=("$(mbps "$SIZE" "$a" "$(now)")")
done
ORIGIN=$(median "${origin_runs[@]}")
DISK=$(median "${disk_runs[@]}")
log "origin ceiling ${ORIGIN} MB/s (runs: ${origin_runs[*]}), disk ceiling ${DISK} MB/s (runs: ${disk_runs[*]})"
PUT_CEIL=n/a PUT_DIRECT=n/a
if has_step write; then
  put_runs=() direct_runs=()
  for ((r = 1; r <= RUNS; r++)); do
    CPU_ORIGIN_PID=$SINK_PID CPU_PROXY_PID=$SINK_PROXY_PID cpu_begin
    v=$("$LIB/multipart_put.sh" "$SINK_URL" "$BUCKET" ceiling-put "$WORK/data/big" 16 16) &&
      { CPU_ORIGIN_PID=$SINK_PID CPU_PROXY_PID=$SINK_PROXY_PID cpu_end ceiling-put "$SIZE"; put_runs+=("$v"); }
    s3curl -X DELETE -o /dev/null "http://127.0.0.1:$SINKPORT/$BUCKET/ceiling-put"
    v=$("$LIB/multipart_put.sh" "http://127.0.0.1:$SINKPORT" "$BUCKET" ceiling-put "$WORK/data/big" 16 16) && direct_runs+=("$v")
    s3curl -X DELETE -o /dev/null "http://127.0.0.1:$SINKPORT/$BUCKET/ceiling-put"
  done
  PUT_CEIL=$(median "${put_runs[@]}")
  PUT_DIRECT=$(median "${direct_runs[@]}")
  log "write origin PUT ceiling ${PUT_CEIL} MB/s through the proxy, ${PUT_DIRECT} MB/s straight to s3sink (16 MiB parts, 16 in flight; runs: ${put_runs[*]} | ${direct_runs[*]})"
  BIG_SHA=$(sha256sum "$WORK/data/big" | cut -d' ' -f1)
fi
declare -A RES
if has_step model; then
  variants=("")
  ((TORCH)) && variants+=(--torch)
  for var in "${variants[@]}"; do
    tag=model${var:+-torch}
    lcold=() lhot=()
    for ((r = 1; r <= RUNS; r++)); do
      drop_caches
      v=$(model_load "$WORK/data/model" "$var") && lcold+=("$v")
      v=$(model_load "$WORK/data/model" "$var") && lhot+=("$v")
    done
    RES[local,$tag,cold]=$(median "${lcold[@]}")
    RES[local,$tag,warm]=${RES[local,$tag,cold]}  # local disk, page cache dropped
    RES[local,$tag,hot]=$(median "${lhot[@]}")
    log "local $tag: cold ${lcold[*]} | hot ${lhot[*]}"
  done
fi

# ---- clients ---------------------------------------------------------------
mount_client() {  # mount_client NAME MNT CACHE -> sets CLIENT_PID, rc 0 when mounted
  local name=$1 mnt=$2 cache=$3 logf="$WORK/$1.log"
  mkdir -p "$mnt" "$cache"
  case $name in
    dsfs | dsfs0)
      local bin=$DSFS_BIN
      [[ $name == dsfs0 ]] && bin=${DSFS_BIN0:-}
      [[ -x $bin ]] || { echo "no dsfs binary at '$bin'" >>"$logf"; return 1; }
      local wrap=()  # DSFS_CGROUP: the daemon starts inside that blkio cgroup (same PID)
      # shellcheck disable=SC2016  # $$ and $0 are the inner shell's
      [[ -n ${DSFS_CGROUP:-} ]] && wrap=(bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$DSFS_CGROUP")
      "${wrap[@]}" "$bin" "$BUCKET" "$mnt" -f \
        -o "url=$MOUNT_URL,use_path_request_style,passwd_file=$WORK/passwd${DSFS_CACHE_OPT:+,$DSFS_CACHE_OPT=$cache}${BENCH_DSFS_OPTS:+,$BENCH_DSFS_OPTS}${DSFS_EXTRA_OPTS:+,$DSFS_EXTRA_OPTS}" \
        >>"$logf" 2>&1 &
      ;;
    s3fs)
      s3fs "$BUCKET" "$mnt" -f \
        -o "use_cache=$cache,url=$MOUNT_URL,use_path_request_style,passwd_file=$WORK/passwd${BENCH_S3FS_OPTS:+,$BENCH_S3FS_OPTS}" \
        >>"$logf" 2>&1 &
      ;;
    rclone)
      # shellcheck disable=SC2086
      env -u AWS_CA_BUNDLE RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
        RCLONE_CONFIG_BENCH_ENDPOINT="$MOUNT_URL" RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$KEY" \
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$SECRET" RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true \
        RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG=/dev/null \
        rclone mount "bench:$BUCKET" "$mnt" --vfs-cache-mode full --cache-dir "$cache" \
        ${BENCH_RCLONE_ARGS:-} >>"$logf" 2>&1 &
      ;;
    *) echo "unknown client $name" >>"$logf"; return 1 ;;
  esac
  CLIENT_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    mountpoint -q "$mnt" && [[ -e $mnt/$READY_NAME ]] && return 0
    kill -0 "$CLIENT_PID" 2>/dev/null || { echo "daemon exited before the mount was ready" >>"$logf"; return 1; }
    sleep 0.1
  done
  echo "mount not ready after 30 s" >>"$logf"
  return 1
}

mount_error() {  # first error line of a client log, else its last line
  { grep -m1 -i 'error' "$1" || tail -1 "$1"; } 2>/dev/null | cut -c1-100
}

PEAK_KB=0
CUR_CLIENT="" STEP_NOW=""
declare -A STEP_RSS  # STEP_RSS[CLIENT,STEP] = highest VmHWM (KiB) of the daemon in that step
unmount_client() {  # unmount_client MNT: records VmHWM, unmounts, reaps the daemon
  local mnt=$1 kb i
  if [[ -n $CLIENT_PID ]] && [[ -r /proc/$CLIENT_PID/status ]]; then
    kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CLIENT_PID/status")
    ((${kb:-0} > PEAK_KB)) && PEAK_KB=$kb
    i="$CUR_CLIENT,$STEP_NOW"
    ((${kb:-0} > ${STEP_RSS[$i]:-0})) && STEP_RSS[$i]=$kb
  fi
  if mountpoint -q "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || { sleep 1; fusermount3 -u "$mnt" 2>/dev/null; } ||
      fusermount3 -uz "$mnt" 2>/dev/null
  fi
  if [[ -n $CLIENT_PID ]]; then
    for ((i = 0; i < 100; i++)); do
      kill -0 "$CLIENT_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$CLIENT_PID" 2>/dev/null && { kill "$CLIENT_PID"; sleep 1; kill -KILL "$CLIENT_PID" 2>/dev/null; }
    wait "$CLIENT_PID" 2>/dev/null
  fi
  mountpoint -q "$mnt" && fusermount3 -uz "$mnt" 2>/dev/null
  CLIENT_PID=""
}

read_seq() {  # read_seq FILE... -> aggregate MB/s of reading all files in parallel
  local a b total=0 f rc=0 pids=()
  a=$(now)
  for f in "$@"; do
    timeout "$STEP_TIMEOUT" dd if="$f" of=/dev/null bs=1M status=none &
    pids+=($!)
  done
  for f in "${pids[@]}"; do wait "$f" || rc=1; done
  b=$(now)
  ((rc == 0)) || return 1
  for f in "$@"; do total=$((total + $(stat -c %s "$f"))); done
  mbps "$total" "$a" "$b"
}

# write_seq MNT NAME -> MB/s of writing big to MNT/NAME with dd until the
# whole object is in the bucket (HEAD on the sink, no proxy, shows its size).
sink_bytes() { curl -s "http://127.0.0.1:$SINKPORT/__sink/stats" | grep -o '"bytes_in": [0-9]*' | grep -o '[0-9]*$'; }
write_seq() {
  local mnt=$1 name=$2 a d e i len b0 watcher up="?"
  cat "$WORK/data/big" >/dev/null  # the source from the page cache
  rm -f "$WORK/upload-start"
  b0=$(sink_bytes)
  (  # when the sink's first byte of this write arrived: the upload's start
    while [[ $(sink_bytes) == "$b0" ]]; do sleep 0.1; done
    now >"$WORK/upload-start"
  ) &
  watcher=$!
  a=$(now)
  timeout "$STEP_TIMEOUT" dd if="$WORK/data/big" of="$mnt/$name" bs=1M status=none || { kill "$watcher"; return 1; }
  d=$(now)
  for ((i = 0; i < STEP_TIMEOUT * 20; i++)); do
    len=$(curl -sfI "http://127.0.0.1:$SINKPORT/$BUCKET/$name" 2>/dev/null | tr -d '\r' |
      sed -n 's/^[Cc]ontent-[Ll]ength: *//p')
    if [[ $len == "$SIZE" ]]; then
      e=$(now)
      kill "$watcher" 2>/dev/null
      wait "$watcher" 2>/dev/null
      [[ -s $WORK/upload-start ]] && up=$(awk -v a="$a" -v b="$(<"$WORK/upload-start")" 'BEGIN { printf "%.1f", b - a }')
      log "$name: first byte at the sink after $up s, dd (with close) took $(awk -v a="$a" -v b="$d" 'BEGIN { printf "%.1f", b - a }') s, complete in the sink after $(awk -v a="$a" -v b="$e" 'BEGIN { printf "%.1f", b - a }') s"
      mbps "$SIZE" "$a" "$e"
      return 0
    fi
    sleep 0.05
  done
  kill "$watcher" 2>/dev/null
  return 1
}

remount_client() {  # remount_client NAME MNT CACHE: unmount, mount again on the same cache
  unmount_client "$2"
  mount_client "$1" "$2" "$3"
}

run_client() {
  local c=$1 mnt="$WORK/mnt-$1" cache="$WORK/cache-$1"
  local cold=() shards=() warm=() hot=() iops=() p99=() v r shard_paths=() s g0 gets=() var tag writes=() sha
  local -A mruns  # mruns[TAG,PHASE] = per-run values
  MOUNTS+=("$mnt")
  PEAK_KB=0
  CUR_CLIENT=$c
  RES[$c,status]=ok
  RES[$c,wstatus]=ok
  [[ $c == dsfs && -z $DSFS_CACHE_OPT ]] && RES[$c,status]="ok (no disk cache)"
  for ((r = 1; r <= RUNS; r++)); do
    log "$c: run $r/$RUNS"
    unmount_client "$mnt"
    STEP_NOW="dd"
    rm -rf "$cache"
    if (has_step dd || has_step model) && ! mount_client "$c" "$mnt" "$cache"; then
      unmount_client "$mnt"
      RES[$c,status]="FAILED (mount: $(mount_error "$WORK/$c.log"))"
      log "$c: mount failed, see $WORK/$c.log"
      return
    fi
    if has_step dd; then
      shard_paths=()
      for s in "${SHARDS[@]}"; do shard_paths+=("$mnt/$s"); done
      drop_caches
      g0=$(origin_gets)
      cpu_begin
      v=$(read_seq "$mnt/big") && { cpu_end "$c" "$SIZE"; cold+=("$v"); gets+=("$(gets_since "$g0" "$(origin_gets)")"); }
      drop_caches
      v=$(read_seq "${shard_paths[@]}") && shards+=("$v")
      if ! remount_client "$c" "$mnt" "$cache"; then
        unmount_client "$mnt"
        RES[$c,status]="FAILED (remount)"
        return
      fi
      drop_caches
      cpu_begin
      v=$(read_seq "$mnt/big") && { cpu_end "$c-warm" "$SIZE"; warm+=("$v"); }
      v=$(read_seq "$mnt/big") && hot+=("$v")
      if ((r == 1)); then
        cmp -s "$mnt/big" "$WORK/data/big" || RES[$c,status]="BAD DATA (big differs from the upload)"
      fi
      drop_caches
      if v=$(timeout "$STEP_TIMEOUT" python3 "$LIB/randread.py" "${shard_paths[0]}" --count "$RAND_COUNT" --seed "$r" --max-seconds 60); then
        iops+=("$(sed 's/.*iops=\([0-9.]*\).*/\1/' <<<"$v")")
        p99+=("$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$v")")
      fi
    fi
    if has_step model; then
      variants=("")
      ((TORCH)) && variants+=(--torch)
      for var in "${variants[@]}"; do
        tag=model${var:+-torch}
        # A fresh cache dir for each cold load.
        unmount_client "$mnt"
        STEP_NOW=$tag
        rm -rf "$cache"
        if ! mount_client "$c" "$mnt" "$cache"; then
          unmount_client "$mnt"
          RES[$c,status]="FAILED (mount for $tag)"
          return
        fi
        drop_caches
        g0=$(origin_gets)
        cpu_begin
        v=$(model_load "$mnt/model" "$var") && { cpu_end "$c-$tag" "$MODEL_BYTES"; mruns[$tag,cold]+="$v "; mruns[$tag,gets]+="$(gets_since "$g0" "$(origin_gets)") "; }
        if ! remount_client "$c" "$mnt" "$cache"; then
          unmount_client "$mnt"
          RES[$c,status]="FAILED (remount for $tag)"
          return
        fi
        drop_caches
        cpu_begin
        v=$(model_load "$mnt/model" "$var") && { cpu_end "$c-$tag-warm" "$MODEL_BYTES"; mruns[$tag,warm]+="$v "; }
        v=$(model_load "$mnt/model" "$var") && mruns[$tag,hot]+="$v "
        if ((r == 1)) && [[ -z $var ]]; then
          for s in "${MODEL_FILES[@]}"; do
            cmp -s "$mnt/model/$s" "$WORK/data/model/$s" || RES[$c,status]="BAD DATA (model/$s differs)"
          done
        fi
      done
    fi
    if has_step write; then  # against the sink: its own mount, fresh cache dir
      unmount_client "$mnt"
      STEP_NOW="write"
      rm -rf "$cache"
      MOUNT_URL=$SINK_URL READY_NAME=ready
      if mount_client "$c" "$mnt" "$cache"; then
        s="written-$c-$r"
        CPU_ORIGIN_PID=$SINK_PID CPU_PROXY_PID=$SINK_PROXY_PID cpu_begin
        if v=$(write_seq "$mnt" "$s"); then
          CPU_ORIGIN_PID=$SINK_PID CPU_PROXY_PID=$SINK_PROXY_PID cpu_end "$c-write" "$SIZE"
          writes+=("$v")
          sha=$(curl -sf "http://127.0.0.1:$SINKPORT/$BUCKET/$s" | sha256sum | cut -d' ' -f1)
          if [[ $sha != "$BIG_SHA" ]]; then
            RES[$c,wstatus]="BAD DATA (run $r: sha256 of the object in the sink differs)"
            log "$c: $s in the sink has sha256 $sha, the source $BIG_SHA"
          fi
        else
          log "$c: write of $s failed or never completed in the bucket"
        fi
        rm -f "$mnt/$s"
        curl -sf -X DELETE -o /dev/null "http://127.0.0.1:$SINKPORT/$BUCKET/$s"
      else
        RES[$c,wstatus]="FAILED (mount on the sink: $(mount_error "$WORK/$c.log"))"
      fi
      unmount_client "$mnt"
      MOUNT_URL=$URL READY_NAME=big
    fi
  done
  unmount_client "$mnt"
  rm -rf "$cache"
  RES[$c,cold]=$(median "${cold[@]}")
  RES[$c,shards]=$(median "${shards[@]}")
  RES[$c,warm]=$(median "${warm[@]}")
  RES[$c,hot]=$(median "${hot[@]}")
  RES[$c,iops]=$(median "${iops[@]}")
  RES[$c,p99]=$(median "${p99[@]}")
  RES[$c,gets]=$(median "${gets[@]}")
  RES[$c,write]=$(median "${writes[@]}")
  has_step write && log "$c: write ${writes[*]}"
  RES[$c,rss]=$(awk -v k="$PEAK_KB" 'BEGIN { printf "%.0f", k / 1024 }')
  has_step dd && log "$c: cold ${cold[*]} | shards ${shards[*]} | warm ${warm[*]} | hot ${hot[*]} | iops ${iops[*]} | p99 ${p99[*]} | GETs ${gets[*]} | rss ${RES[$c,rss]} MiB"
  for tag in model model-torch; do
    [[ -n ${mruns[$tag,cold]:-}${mruns[$tag,warm]:-} ]] || continue
    for s in cold warm hot gets; do
      # shellcheck disable=SC2086  # space-separated run values
      RES[$c,$tag,$s]=$(median ${mruns[$tag,$s]:-})
    done
    log "$c $tag: cold ${mruns[$tag,cold]:-}| warm ${mruns[$tag,warm]:-}| hot ${mruns[$tag,hot]:-}| GETs ${mruns[$tag,gets]:-}| rss ${RES[$c,rss]} MiB"
  done
}

if has_step dd || has_step model || has_step write; then
  for c in $CLIENTS; do run_client "$c"; done
fi
if has_step slowdisk || has_step twosource; then
  [[ -x $DSFS_BIN ]] || die "steps slowdisk/twosource need dsfs at $DSFS_BIN"
  command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null || die "slowdisk/twosource need losetup and mkfs.ext4"
  # shellcheck source-path=SCRIPTDIR source=bench_lib/slowdisk.sh disable=SC1091
  source "$LIB/slowdisk.sh"
  has_step slowdisk && step_slowdisk
  has_step twosource && step_twosource
fi

# prefetch_mem of the dsfs mounts in MiB: from BENCH_DSFS_OPTS, else dsfs --help's default
prefetch_mem_mib() {
  local v
  v=$(tr ',' '\n' <<<"${BENCH_DSFS_OPTS:-}" | sed -n 's/^prefetch_mem=//p' | tail -1)
  [[ -n $v ]] || v=$("$DSFS_BIN" --help 2>&1 | sed -n 's/.*prefetch_mem=.*\[default: \(.*\)\]/\1/p')
  awk -v v="$v" -v ram="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" '
    function mib(x,  n, u) { n = x + 0; u = toupper(substr(x, length(x)));
      return u == "K" ? n / 1024 : u == "M" ? n : u == "G" ? n * 1024 : u == "T" ? n * 1048576 : n / 1048576 }
    BEGIN { if (v ~ /^min\(1G, RAM\/8\)$/) { r = ram / 1024 / 8; printf "%.0f", r < 1024 ? r : 1024 }
            else if (v ~ /^[0-9.]+[KMGTkmgt]?$/) printf "%.0f", mib(v); else print "?" }'
}

# ---- report ----------------------------------------------------------------
ratio() {  # ratio A B -> A/B with 2 decimals, n/a if either is not a number
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
TABLE="$OUT/bench-$STAMP.txt"
{
  echo "dsfs bench $STAMP  steps: $STEPS  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "dsfs bench $STAMP  runs=$RUNS  big=${SIZE_MB}MiB  shards=${NSHARDS}x${SHARD_MB}MiB  origin: latency ${LATENCY_MS}ms, ${BW_PER_CONN}/conn ${PROXY_ARGS}"
  if has_step dd; then
  echo "throughput in MB/s (10^6 B/s), median of $RUNS; random = ${RAND_COUNT} x 4 KiB preads on a cached shard; GETs = origin GETs of the cold read of big"
  printf '%-8s %9s %9s %9s %9s %9s %9s %6s %8s  %s\n' client cold 4shards warm hot rand-IOPS p99-ms GETs RSS-MiB status
  for c in $CLIENTS; do
    if [[ ${RES[$c,status]} == FAILED* ]]; then
      printf '%-8s %9s %9s %9s %9s %9s %9s %6s %8s  %s\n' "$c" FAILED - - - - - - - "${RES[$c,status]}"
    else
      printf '%-8s %9s %9s %9s %9s %9s %9s %6s %8s  %s\n' "$c" "${RES[$c,cold]}" "${RES[$c,shards]}" \
        "${RES[$c,warm]}" "${RES[$c,hot]}" "${RES[$c,iops]}" "${RES[$c,p99]}" "${RES[$c,gets]}" "${RES[$c,rss]}" "${RES[$c,status]}"
    fi
  done
  printf '%-8s %9s %9s %9s\n' origin "$ORIGIN" "$ORIGIN" "-"
  printf '%-8s %9s %9s %9s\n' disk "-" "-" "$DISK"
  echo "ceilings: origin = 16 ranged GETs in flight through the proxy (curl); disk = dd iflag=direct of a ${SIZE_MB} MiB file on the cache disk"
  if [[ " $CLIENTS " == *" dsfs "* ]]; then
    d() { [[ ${RES[dsfs,status]:-} == FAILED* ]] && echo x || echo "${RES[dsfs,$1]:-x}"; }
    for other in dsfs0 s3fs rclone; do
      [[ " $CLIENTS " == *" $other "* ]] || continue
      o() { [[ ${RES[$other,status]} == FAILED* ]] && echo x || echo "${RES[$other,$1]}"; }
      printf 'dsfs/%-7s cold %s  4shards %s  warm %s  hot %s  rand-IOPS %s\n' "$other" \
        "$(ratio "$(d cold)" "$(o cold)")" "$(ratio "$(d shards)" "$(o shards)")" \
        "$(ratio "$(d warm)" "$(o warm)")" "$(ratio "$(d hot)" "$(o hot)")" "$(ratio "$(d iops)" "$(o iops)")"
    done
    printf 'dsfs/origin-ceiling  cold %s  4shards %s\n' "$(ratio "$(d cold)" "$ORIGIN")" "$(ratio "$(d shards)" "$ORIGIN")"
    printf 'dsfs-warm/disk-ceiling  %s\n' "$(ratio "$(d warm)" "$DISK")"
  fi
  for c in $CLIENTS; do
    [[ ${RES[$c,status]} == FAILED* ]] && continue
    printf '%s: cold/origin %s  warm/disk %s\n' "$c" "$(ratio "${RES[$c,cold]}" "$ORIGIN")" "$(ratio "${RES[$c,warm]}" "$DISK")"
  done
  fi
  if has_step model; then
    for tag in model model-torch; do
      [[ -n ${RES[local,$tag,cold]:-} ]] || continue
      echo
      echo "$tag: $MODEL_PROCS processes, each mmaps one ${MODEL_MB} MiB safetensors shard and copies every tensor out in header order${tag#model}; aggregate MB/s, median of $RUNS"
      echo "cold = fresh cache dir, page cache dropped; warm = after remount, page cache dropped; hot = again; GETs = origin GETs of the cold load"
      printf '%-8s %9s %9s %9s %6s %8s  %s\n' client cold warm hot GETs RSS-MiB status
      for c in $CLIENTS; do
        if [[ ${RES[$c,status]} == FAILED* ]]; then
          printf '%-8s %9s %9s %9s %6s %8s  %s\n' "$c" FAILED - - - - "${RES[$c,status]}"
        else
          printf '%-8s %9s %9s %9s %6s %8s  %s\n' "$c" "${RES[$c,$tag,cold]:-FAILED}" "${RES[$c,$tag,warm]:-FAILED}" \
            "${RES[$c,$tag,hot]:-FAILED}" "${RES[$c,$tag,gets]:-?}" "${RES[$c,rss]}" "${RES[$c,status]}"
        fi
      done
      printf '%-8s %9s %9s %9s\n' local "${RES[local,$tag,cold]}" "${RES[local,$tag,warm]}" "${RES[local,$tag,hot]}"
      printf '%-8s %9s\n' origin "$ORIGIN"
      echo "local = the same files on the local disk (warm = cold: page cache dropped); origin = the ceiling above"
      if [[ " $CLIENTS " == *" dsfs "* && ${RES[dsfs,status]} != FAILED* ]]; then
        m() { echo "${RES[$1,$tag,$2]:-x}"; }
        for other in dsfs0 s3fs rclone local; do
          [[ $other == local || " $CLIENTS " == *" $other "* ]] || continue
          [[ ${RES[$other,status]:-ok} == FAILED* ]] && continue
          printf '%s dsfs/%-7s cold %s  warm %s  hot %s\n' "$tag" "$other" "$(ratio "$(m dsfs cold)" "$(m "$other" cold)")" \
            "$(ratio "$(m dsfs warm)" "$(m "$other" warm)")" "$(ratio "$(m dsfs hot)" "$(m "$other" hot)")"
        done
        printf '%s dsfs/origin-ceiling cold %s\n' "$tag" "$(ratio "$(m dsfs cold)" "$ORIGIN")"
      fi
    done
  fi
  if has_step write; then
    echo
    echo "write: dd bs=1M of a ${SIZE_MB} MiB file through the mount until the object is complete in the bucket, MB/s, median of $RUNS"
    printf '%-8s %9s  %s\n' client write status
    for c in $CLIENTS; do
      printf '%-8s %9s  %s\n' "$c" "${RES[$c,write]:-FAILED}" "${RES[$c,wstatus]:-FAILED}"
    done
    printf '%-8s %9s  %s\n' origin "$PUT_CEIL" "multipart PUT through the proxy, 16 MiB parts, 16 in flight (curl)"
    printf '%-8s %9s  %s\n' sink "$PUT_DIRECT" "the same straight to s3sink (no proxy): the sink's own ingest"
    echo "origin of this step: bench_lib/s3sink.py (objects in ${SINK_DIR:-?}) behind s3proxy.py; status: sha256 of a GET from the sink after each run"
    if [[ " $CLIENTS " == *" dsfs "* ]]; then
      for other in dsfs0 s3fs rclone; do
        [[ " $CLIENTS " == *" $other "* ]] || continue
        printf 'write dsfs/%-7s %s\n' "$other" "$(ratio "${RES[dsfs,write]:-x}" "${RES[$other,write]:-x}")"
      done
      printf 'write dsfs/origin-PUT-ceiling %s\n' "$(ratio "${RES[dsfs,write]:-x}" "$PUT_CEIL")"
    fi
  fi
  has_step slowdisk && slowdisk_report
  has_step twosource && twosource_report
  if [[ " $CLIENTS " == *" dsfs "* ]] || has_step slowdisk || has_step twosource; then
    echo
    line="dsfs peak RSS (VmHWM, MiB) per step:"
    for st in dd model model-torch write slowdisk twosource; do
      [[ -n ${STEP_RSS[dsfs,$st]:-} ]] && line+=" $st $(awk -v k="${STEP_RSS[dsfs,$st]}" 'BEGIN { printf "%.0f", k / 1024 }')"
    done
    pm=$(prefetch_mem_mib)
    echo "$line; prefetch_mem $pm MiB (target: RSS <= $(awk -v p="$pm" 'BEGIN { if (p ~ /^[0-9]+$/) print p + 128; else print "?" }') MiB)"
  fi
} | tee "$TABLE"
if ((CPU)); then
  labels=""
  has_step dd && for c in $CLIENTS; do labels+=" $c $c-warm"; done
  has_step model && for c in $CLIENTS; do labels+=" $c-model $c-model-warm"; done
  has_step slowdisk && labels+=" slowdisk-cold slowdisk-warm"
  has_step twosource && for row in "${TWOSOURCE_ROWS[@]}"; do labels+=" twosource-$row"; done
  has_step write && { labels+=" ceiling-put"; for c in $CLIENTS; do labels+=" $c-write"; done; }
  # shellcheck disable=SC2086  # labels is a list
  {
    echo
    cpu_table "$RUNS" ceiling $labels
    # shellcheck disable=SC2086
    for l in dsfs slowdisk; do  # the dd step's reads; the slowdisk step's
      [[ $l == dsfs ]] && { has_step dd && [[ " $CLIENTS " == *" dsfs "* ]] || continue; }
      [[ $l == slowdisk ]] && { has_step slowdisk || continue; }
      k=$l; [[ $l == slowdisk ]] && k=slowdisk-cold
      echo "dsfs cpu-s/GiB cold $(median ${CPU_RUNS[$k,daemon]:-}) warm $(median ${CPU_RUNS[$l-warm,daemon]:-}) (daemon, step ${l/dsfs/dd}; target 0.6)"
    done
    if has_step model && [[ " $CLIENTS " == *" dsfs "* ]]; then
      echo "dsfs cpu-s/GiB cold $(median ${CPU_RUNS[dsfs-model,daemon]:-}) warm $(median ${CPU_RUNS[dsfs-model-warm,daemon]:-}) (daemon, step model; target 0.6)"
    fi
    if has_step write && [[ " $CLIENTS " == *" dsfs "* ]]; then
      echo "dsfs cpu-s/GiB write $(median ${CPU_RUNS[dsfs-write,daemon]:-}) (daemon, step write)"
    fi
  } | tee -a "$TABLE"
fi

if ((PLOT)); then
  DAT="$OUT/bench-$STAMP.dat"
  num() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1" || echo -; }
  {
    echo "# name cold 4shards warm hot"
    for c in $CLIENTS; do
      echo "$c $(num "${RES[$c,cold]:-}") $(num "${RES[$c,shards]:-}") $(num "${RES[$c,warm]:-}") $(num "${RES[$c,hot]:-}")"
    done
    echo "origin-ceiling $(num "$ORIGIN") $(num "$ORIGIN") - -"
    echo "disk-ceiling - - $(num "$DISK") -"
  } >"$DAT"
  PNG="$OUT/bench-$STAMP.png"
  gnuplot <<EOF || log "gnuplot failed"
set terminal pngcairo size 1000,560
set output "$PNG"
set title "dsfs bench $STAMP (${SIZE_MB} MiB object, ${NSHARDS}x${SHARD_MB} MiB shards, latency ${LATENCY_MS} ms, ${BW_PER_CONN}/conn)"
set ylabel "MB/s"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set logscale y
set yrange [10:30000]
plot "$DAT" using 2:xtic(1) title "cold", '' using 3 title "4 shards cold", '' using 4 title "warm (remount)", '' using 5 title "hot"
EOF
  [[ -f $PNG ]] && log "plot: $PNG"
fi
log "table: $TABLE"
