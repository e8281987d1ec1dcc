#!/usr/bin/env bash
# Checks the include rules of dsfs:
#   - layers: common <- backends <- cache <- fs <- tools. A file of one layer
#     includes headers of its own layer or of the layers below it only
#     (tests/ may include anything);
#   - libfuse: only fs/fuse_adapter.* includes fuse_lowlevel.h / fuse.h, so
#     the rest of the code can be built and tested without a FUSE session.
#   scripts/check_layers.sh [ROOT]     check the tree at ROOT (default: this repo)
#   scripts/check_layers.sh --self-test
#                                      plant violations in a temporary tree and
#                                      fail unless each one is caught
# Exits 1 and lists every violation (file:line: text) when a rule is broken.
set -euo pipefail

LAYERS=(common backends cache fs tools)

rank_of() {
  local i
  for i in "${!LAYERS[@]}"; do
    if [ "${LAYERS[$i]}" = "$1" ]; then
      echo "$i"
      return
    fi
  done
  echo -1
}

# check ROOT: prints violations, returns 1 if there are any.
check() {
  local root="$1" bad=0 f rel layer rank line num text inc target trank
  while IFS= read -r f; do
    rel="${f#"$root"/}"
    layer="${rel%%/*}"
    rank="$(rank_of "$layer")"
    while IFS= read -r line; do
      num="${line%%:*}"
      text="${line#*:}"
      if [[ "$text" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<(fuse3/)?(fuse|fuse_lowlevel)\.h\> ]]; then
        case "$rel" in
          fs/fuse_adapter.h | fs/fuse_adapter.cc) ;;
          *)
            echo "$rel:$num: only fs/fuse_adapter.* may include libfuse: $text"
            bad=1
            ;;
        esac
      fi
      if [ "$rank" -ge 0 ] && [[ "$text" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"/]+)/ ]]; then
        inc="${BASH_REMATCH[1]}"
        target="$(rank_of "$inc")"
        if [ "$target" -gt "$rank" ]; then
          echo "$rel:$num: $layer/ must not include $inc/ (a layer above it): $text"
          bad=1
        fi
      fi
    done < <(grep -n 'include' "$f" || true)
  done < <(find "$root" -type d \( -name .git -o -name 'build*' -o -name node_modules -o -name .deps \) -prune -o \
    -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.in' \) -print | sort)
  return "$bad"
}

self_test() {
  local tmp fails=0
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  plant() {  # plant FILE CONTENT
    mkdir -p "$(dirname "$tmp/$1")"
    printf '%s\n' "$2" >"$tmp/$1"
  }
  # A clean tree: every include points down or sideways, tests include anything.
  plant common/a.h '#include "common/b.h"'
  plant backends/s.h '#include "common/a.h"'
  plant cache/c.h '#include "backends/s.h"'
  plant fs/f.h '#include "cache/c.h"'
  plant fs/fuse_adapter.cc '#include <fuse_lowlevel.h>'
  plant tools/t.cc '#include "fs/f.h"'
  plant tests/unit/x_test.cc '#include "tools/t.h"'
  if ! out="$(check "$tmp")"; then
    echo "self-test: a clean tree was reported: $out" >&2
    fails=1
  fi
  # Each violation alone must be caught.
  local -a cases=(
    'cache/up.cc|#include "fs/f.h"'
    'common/up.h|  #  include "tools/t.h"'
    'backends/up.h|#include "cache/c.h"'
    'fs/up.cc|#include "tools/daemon.h"'
    'backends/fuse.cc|#include <fuse_lowlevel.h>'
    'fs/filesystem.cc|#include <fuse.h>'
    'tools/daemon.cc|#include <fuse3/fuse_lowlevel.h>'
  )
  local c file content
  for c in "${cases[@]}"; do
    file="${c%%|*}"
    content="${c#*|}"
    plant "$file" "$content"
    if out="$(check "$tmp")"; then
      echo "self-test: missed '$content' in $file" >&2
      fails=1
    elif ! grep -q "^$file:1:" <<<"$out"; then
      echo "self-test: '$content' in $file not named: $out" >&2
      fails=1
    fi
    rm "$tmp/$file"
  done
  if [ "$fails" = 0 ]; then
    echo "check_layers.sh self-test: ok (${#cases[@]} planted violations caught, clean tree passes)"
  fi
  return "$fails"
}

case "${1:-}" in
  --self-test) self_test ;;
  -h | --help) sed -n '2,11p' "$0" ;;
  *)
    ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
    if check "$ROOT"; then
      echo "check_layers.sh: ok"
    else
      echo "check_layers.sh: include rules broken (see above)" >&2
      exit 1
    fi
    ;;
esac
