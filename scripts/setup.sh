#!/usr/bin/env bash
# Installs everything dsfs needs to build, test, benchmark and demo on a
# Debian 12 machine. Idempotent: when everything is present it only checks.
# Works without a TTY, as root (or with sudo), with CI=true.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3RVER_VERSION=3.7.1

PKGS=(
  ninja-build cmake g++ pkg-config
  libfuse3-dev fuse3
  libcurl4-openssl-dev libssl-dev librocksdb-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libpugixml-dev libcli11-dev
  libxxhash-dev libmicrohttpd-dev
  prometheus
  s3fs rclone python3 openssl curl gnuplot-nox fio
  dpkg-dev logrotate man-db groff-base
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js and npm run s3rver, the S3 server of the mount tests. Any Node.js
# >= 18 will do; Debian's packages only when none is installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# s3rver, pinned, into <repo>/.deps (git-ignored).
have=""
if [ -f "$REPO/.deps/node_modules/s3rver/package.json" ]; then
  have="$(node -p "require('$REPO/.deps/node_modules/s3rver/package.json').version" 2>/dev/null || true)"
fi
if [ "$have" != "$S3RVER_VERSION" ] || [ ! -x "$REPO/.deps/node_modules/.bin/s3rver" ]; then
  echo "setup: installing s3rver@$S3RVER_VERSION into $REPO/.deps"
  mkdir -p "$REPO/.deps"
  npm install --prefix "$REPO/.deps" --no-audit --no-fund --loglevel=error \
    "s3rver@$S3RVER_VERSION" </dev/null
else
  echo "setup: s3rver $have present"
fi

if [ ! -e /dev/fuse ]; then
  echo "setup: warning: /dev/fuse is missing; mounts (and the mount tests) will fail" >&2
fi
echo "setup: done"
