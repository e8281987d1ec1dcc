#!/usr/bin/env bash
# dsfs demo: builds dsfs, starts a local S3 server (s3rver on 127.0.0.1)
# with a bucket holding a small fake model, mounts it with dsfs, lists it,
# checks every file's sha256 against the source and reads the safetensors
# headers through the mount. Unmounts and stops the server on exit, unless
# --keep is given. Safe to re-run.
#   scripts/demo.sh [--keep]
# DSFS_BUILD_DIR=DIR builds in DIR instead of build/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
CLIENT="${DSFS_DEMO_CLIENT:-dsfs}"  # s3fs: run the same demo with s3fs
BUCKET=demo-models

say() { printf '\n== %s\n' "$*"; }

say "setup and build"
bash "$REPO/scripts/setup.sh"
BUILD="${DSFS_BUILD_DIR:-$REPO/build}"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" dsfs
DSFS="$BUILD/tools/dsfs"

WORK="$(mktemp -d /tmp/dsfs-demo.XXXXXX)"
MNT="$WORK/mnt"
mkdir -p "$MNT" "$WORK/s3"
S3RVER_PID=""
cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then
    return
  fi
  if grep -qs " $MNT " /proc/mounts; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" || true
  fi
  if [ -n "$S3RVER_PID" ]; then
    kill "$S3RVER_PID" 2>/dev/null || true
    wait "$S3RVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

say "fake model"
python3 "$REPO/scripts/make_demo_model.py" "$WORK/model"

say "local S3 server (s3rver)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# s3rver 3.7.1 needs OpenSSL's legacy provider for its listing tokens.
NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" \
  "$REPO/.deps/node_modules/.bin/s3rver" -d "$WORK/s3" -a 127.0.0.1 -p "$PORT" \
  --silent --configure-bucket "$BUCKET" >"$WORK/s3rver.log" 2>&1 </dev/null &
S3RVER_PID=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" || { echo "s3rver did not start" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"
echo "s3rver pid $S3RVER_PID on $URL, bucket $BUCKET"
# s3rver's one account is S3RVER / S3RVER.
python3 "$REPO/scripts/make_demo_model.py" "$WORK/model" \
  --upload "$URL" "$BUCKET" S3RVER S3RVER | tail -1

PASSWD="$WORK/passwd-dsfs"
( umask 077; echo "S3RVER:S3RVER" >"$PASSWD" )
chmod 600 "$PASSWD"

say "mount"
if [ "$CLIENT" = s3fs ]; then
  s3fs "$BUCKET" "$MNT" -o "url=$URL,use_path_request_style,passwd_file=$PASSWD,ro"
  for _ in $(seq 100); do grep -qs " $MNT " /proc/mounts && break; sleep 0.1; done
else
  echo "\$ dsfs $BUCKET $MNT -o url=$URL,use_path_request_style,passwd_file=$PASSWD,logfile=$WORK/dsfs.log"
  "$DSFS" "$BUCKET" "$MNT" -o "url=$URL,use_path_request_style,passwd_file=$PASSWD,logfile=$WORK/dsfs.log"
fi
grep " $MNT " /proc/mounts

say "ls -lR $MNT"
ls -lR "$MNT"

say "sha256 of every file, source vs mount"
( cd "$WORK/model" && find . -type f | sort | xargs sha256sum ) >"$WORK/SHA256SUMS"
start=$EPOCHREALTIME
( cd "$MNT" && sha256sum -c "$WORK/SHA256SUMS" )
end=$EPOCHREALTIME
nfiles=$(wc -l <"$WORK/SHA256SUMS")
bytes=$(du -sb "$WORK/model" | cut -f1)
python3 -c "import sys; n,b,t=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); print(f'all {n} files identical ({b/2**20:.1f} MiB read through the mount in {t:.2f} s)')" \
  "$nfiles" "$bytes" "$(python3 -c "print($end - $start)")"

say "safetensors headers, read through the mount"
python3 - "$MNT/deepseek-demo" <<'PY'
import glob, json, os, struct, sys
root = sys.argv[1]
index = json.load(open(os.path.join(root, "model.safetensors.index.json")))
for path in sorted(glob.glob(os.path.join(root, "*.safetensors"))):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        end = max(v["data_offsets"][1] for v in tensors.values())
        assert os.path.getsize(path) == 8 + n + end, "size mismatch"
        mine = {k for k, v in index["weight_map"].items()
                if v == os.path.basename(path)}
        assert mine == set(tensors), "index and header disagree"
    print(f"{os.path.basename(path)}: {len(tensors)} tensors, "
          f"{end / 2**20:.1f} MiB of data, header {n} bytes: OK")
PY

say "done"
if [ "$KEEP" = 1 ]; then
  cat <<MSG
The mount stays up (--keep):
  mountpoint  $MNT
  s3rver      pid $S3RVER_PID on $URL
To stop:  fusermount3 -u $MNT; kill $S3RVER_PID; rm -rf $WORK
MSG
else
  echo "Unmounting and stopping s3rver (use --keep to leave them running)."
  echo "To unmount a dsfs mount yourself:  fusermount3 -u MOUNTPOINT   (or umount MOUNTPOINT as root)"
fi
cat <<'MSG'

To mount a real OBS bucket (after `install -m 0755 build/tools/dsfs /usr/local/bin/dsfs`):
  printf '%s:%s\n' "$AK" "$SK" > /etc/passwd-dsfs && chmod 600 /etc/passwd-dsfs
  mount -t fuse.dsfs my-bucket /mnt/models -o url=https://obs.cn-north-4.myhuaweicloud.com,passwd_file=/etc/passwd-dsfs,allow_other
or in /etc/fstab:
  my-bucket /mnt/models fuse.dsfs _netdev,nofail,allow_other,url=https://obs.cn-north-4.myhuaweicloud.com,passwd_file=/etc/passwd-dsfs 0 0
MSG
