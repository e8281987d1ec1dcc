# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # RES, STEP_NOW, DSFS_CGROUP ...: bench.sh's variables
# Steps "slowdisk" and "twosource" of bench.sh (sourced by it; uses its
# WORK, SIZE, SIZE_MB, RUNS, ORIGIN, RES, MOUNTS, CUR_CLIENT, STEP_NOW,
# DSFS_CGROUP, DSFS_EXTRA_OPTS and its mount/read helpers). dsfs only.
#
# A "slow disk" is an ext4 on a loop device (a sparse file in the work dir,
# losetup --direct-io=on so the backing file skips the page cache), throttled
# with the cgroup v1 blkio controller: a cgroup dsfs-bench-PID-NAME whose
# blkio.throttle.{read,write}_bps_device hold "MAJ:MIN BPS" for the loop
# device. Only I/O issued by tasks in that cgroup is throttled: dsfs is
# started inside it (DSFS_CGROUP), and so are the "alone" dd's. dsfs writes
# cache blocks with O_DIRECT from its own threads, so they count; buffered
# writeback by kernel flusher threads would not (cgroup v1 does not charge
# writeback to the writer), hence the direct dd's for the disk-alone numbers.
# The bytes the cgroup moved on the device (blkio.throttle.io_service_bytes)
# are printed, as proof that dsfs's I/O went through the throttle.

LOOP_MNTS=() LOOP_DEVS=() LOOP_CGROUPS=()
LOOPFS_DIR="" LOOPFS_CG="" LOOPFS_MM=""
TWOSOURCE_ROWS=()

loopfs_make() {  # loopfs_make NAME SIZE_MB BPS: sets LOOPFS_DIR, LOOPFS_CG, LOOPFS_MM
  local name=$1 img="$WORK/$1.img" dev cg="/sys/fs/cgroup/blkio/dsfs-bench-$$-$1"
  [[ -d /sys/fs/cgroup/blkio ]] || { log "$name: no cgroup v1 blkio controller at /sys/fs/cgroup/blkio"; return 1; }
  truncate -s "${2}M" "$img" || return 1
  dev=$(losetup -f --show --direct-io=on "$img" 2>/dev/null || losetup -f --show "$img") ||
    { log "$name: losetup failed"; return 1; }
  LOOP_DEVS+=("$dev")
  mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$dev" || return 1
  mkdir -p "$WORK/$name"
  mount "$dev" "$WORK/$name" || return 1
  LOOP_MNTS+=("$WORK/$name")
  LOOPFS_MM=$(lsblk -dno MAJ:MIN "$dev" | tr -d ' ')
  mkdir "$cg" || return 1
  LOOP_CGROUPS+=("$cg")
  echo "$LOOPFS_MM $3" >"$cg/blkio.throttle.read_bps_device" &&
    echo "$LOOPFS_MM $3" >"$cg/blkio.throttle.write_bps_device" || return 1
  LOOPFS_DIR=$WORK/$name LOOPFS_CG=$cg
  log "$name: $dev ($LOOPFS_MM, ${2} MiB ext4) at $LOOPFS_DIR, throttled to $3 B/s for tasks in $cg"
}

loopfs_cleanup() {  # umount, losetup -d, rmdir the cgroups (from the cleanup trap too)
  local m d c i
  for m in "${LOOP_MNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  for d in "${LOOP_DEVS[@]}"; do losetup -d "$d"; done
  for c in "${LOOP_CGROUPS[@]}"; do  # a killed daemon leaves the cgroup when it is reaped
    for ((i = 0; i < 50; i++)); do rmdir "$c" 2>/dev/null && break; sleep 0.1; done
  done
  LOOP_MNTS=() LOOP_DEVS=() LOOP_CGROUPS=()
}

in_cgroup() {  # in_cgroup CGDIR CMD...: runs CMD inside the cgroup
  # shellcheck disable=SC2016  # $$ and $0 are the inner shell's
  bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$@"
}

cg_io_mib() {  # cg_io_mib CGDIR MAJ:MIN Read|Write -> MiB the cgroup moved on the device
  awk -v d="$2" -v k="$3" '$1 == d && $2 == k { printf "%.0f", $3 / 1048576; f = 1 } END { if (!f) print 0 }' \
    "$1/blkio.throttle.io_service_bytes"
}

direct_rate() {  # direct_rate CGDIR read FILE | write FILE MB: dd with O_DIRECT in the cgroup -> MB/s
  local a b bytes
  a=$(now)
  if [[ $2 == read ]]; then
    in_cgroup "$1" dd if="$3" of=/dev/null bs=1M iflag=direct status=none || return 1
    bytes=$(stat -c %s "$3")
  else
    in_cgroup "$1" dd if=/dev/zero of="$3" bs=1M count="$4" oflag=direct status=none || return 1
    bytes=$(($4 << 20))
  fi
  b=$(now)
  mbps "$bytes" "$a" "$b"
}

origin_bps() {  # origin_bps DIVISOR -> the origin ceiling in B/s over DIVISOR (64 MiB/s if unknown)
  awk -v o="$ORIGIN" -v d="$1" 'BEGIN { if (o ~ /^[0-9.]+$/) printf "%d", o * 1e6 / d; else print 67108864 }'
}

# dsfs_cold MNT CACHE LABEL [prove]: COLD_MBPS = MB/s of a cold read of big
# on a fresh mount on an empty CACHE; GETs in RES[twosource,LABEL,gets]; with
# "prove", user.dsfs.prove on big first (RES[twosource,LABEL,proof] = its
# first line). Not in a $(...): the mount daemon must be this shell's child.
dsfs_cold() {
  local mnt=$1 cache=$2 label=$3 g0 proof io0
  COLD_MBPS=""
  unmount_client "$mnt"
  rm -rf "$cache"
  mount_client dsfs "$mnt" "$cache" || { log "$label: mount failed: $(mount_error "$WORK/dsfs.log")"; return 1; }
  if [[ ${4:-} == prove ]]; then
    proof=$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.dsfs.prove").decode())' "$mnt/big" 2>&1)
    RES[twosource,$label,proof]=$(head -1 <<<"$proof" | cut -c1-60)
    [[ $proof == proven* ]] || log "$label: user.dsfs.prove on big answered: $proof"
  fi
  drop_caches
  g0=$(origin_gets)
  io0=$(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Read)
  cpu_begin
  COLD_MBPS=$(read_seq "$mnt/big") || return 1
  cpu_end "twosource-$label" "$SIZE"
  RES[twosource,$label,gets]=$(gets_since "$g0" "$(origin_gets)")
  RES[twosource,$label,share]=$(($(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Read) - io0))
  # How the split went: reads and bytes per source, hedges started and won.
  log "$label: $(python3 -c 'import os, sys; print(" ".join(l for l in os.getxattr(sys.argv[1], "user.dsfs.stats").decode().splitlines() if l.startswith("dsfs_parallel")))' "$mnt" 2>&1)"
}

step_slowdisk() {
  local bps mnt="$WORK/mnt-slowdisk" cache r v cold=() warm=() io0r io0w g0 gets_cold=() gets_warm=()
  bps=${BENCH_SLOWDISK_BPS:-$(origin_bps 4)}
  RES[slowdisk,bps]=$bps
  loopfs_make slowdisk $((SIZE_MB * 2 + 512)) "$bps" || { RES[slowdisk,status]="FAILED (loop fs, see the log)"; return; }
  cache=$LOOPFS_DIR/cache
  # Disk alone: the file is written from outside the cgroup (not throttled).
  dd if="$WORK/data/big" of="$LOOPFS_DIR/alone" bs=1M oflag=direct status=none || return
  drop_caches
  RES[slowdisk,alone]=$(direct_rate "$LOOPFS_CG" read "$LOOPFS_DIR/alone") || RES[slowdisk,alone]=FAILED
  RES[slowdisk,alone_w]=$(direct_rate "$LOOPFS_CG" write "$LOOPFS_DIR/w" 256) || RES[slowdisk,alone_w]=FAILED
  rm -f "$LOOPFS_DIR/alone" "$LOOPFS_DIR/w"
  log "slowdisk: disk alone read ${RES[slowdisk,alone]} MB/s, write ${RES[slowdisk,alone_w]} MB/s (O_DIRECT, in the cgroup)"
  io0r=$(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Read) io0w=$(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Write)
  MOUNTS+=("$mnt")
  # cache_size's default (10% of its disk, ~10% of this small fs) would evict
  # big's blocks before the warm read.
  CUR_CLIENT=dsfs STEP_NOW=slowdisk DSFS_CGROUP=$LOOPFS_CG DSFS_EXTRA_OPTS="cache_size=$((SIZE_MB * 3 / 2))M"
  RES[slowdisk,status]=ok
  for ((r = 1; r <= RUNS; r++)); do
    unmount_client "$mnt"
    rm -rf "$cache"
    mount_client dsfs "$mnt" "$cache" || { RES[slowdisk,status]="FAILED (mount: $(mount_error "$WORK/dsfs.log"))"; break; }
    drop_caches
    g0=$(origin_gets)
    cpu_begin
    v=$(read_seq "$mnt/big") && { cpu_end slowdisk-cold "$SIZE"; cold+=("$v"); }
    gets_cold+=("$(gets_since "$g0" "$(origin_gets)")")
    remount_client dsfs "$mnt" "$cache" || { RES[slowdisk,status]="FAILED (remount)"; break; }
    # What reached the slow disk from the cold read until its unmount ended.
    ((r == 1)) && RES[slowdisk,io_cold_w]=$(($(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Write) - io0w)) &&
      RES[slowdisk,cache_mib]=$(du -sm "$cache" | cut -f1)
    drop_caches
    g0=$(origin_gets)
    cpu_begin
    v=$(read_seq "$mnt/big") && { cpu_end slowdisk-warm "$SIZE"; warm+=("$v"); }
    gets_warm+=("$(gets_since "$g0" "$(origin_gets)")")
    ((r == 1)) && ! cmp -s "$mnt/big" "$WORK/data/big" && RES[slowdisk,status]="BAD DATA (big differs)"
  done
  unmount_client "$mnt"
  DSFS_CGROUP="" DSFS_EXTRA_OPTS=""
  RES[slowdisk,cold]=$(median "${cold[@]}")
  RES[slowdisk,warm]=$(median "${warm[@]}")
  RES[slowdisk,gets_cold]=$(median "${gets_cold[@]}")
  RES[slowdisk,gets_warm]=$(median "${gets_warm[@]}")
  RES[slowdisk,io_r]=$(($(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Read) - io0r))
  RES[slowdisk,io_w]=$(($(cg_io_mib "$LOOPFS_CG" "$LOOPFS_MM" Write) - io0w))
  log "slowdisk: cold ${cold[*]} (GETs ${gets_cold[*]}) | warm ${warm[*]} (GETs ${gets_warm[*]}) | dsfs I/O on the loop device in the cgroup: read ${RES[slowdisk,io_r]} MiB, write ${RES[slowdisk,io_w]} MiB (${RES[slowdisk,io_cold_w]:-?} MiB of it by the end of run 1's cold mount, cache dir then ${RES[slowdisk,cache_mib]:-?} MiB)"
  loopfs_cleanup
}

step_twosource() {
  local bps mnt="$WORK/mnt-twosource" cache="$WORK/cache-twosource" r share row
  local -A runs
  bps=${BENCH_SHARE_BPS:-$(origin_bps 1)}
  RES[twosource,bps]=$bps
  loopfs_make share $((SIZE_MB + 256)) "$bps" || { RES[twosource,status]="FAILED (loop fs, see the log)"; return; }
  share=$LOOPFS_DIR/share
  mkdir -p "$share"
  dd if="$WORK/data/big" of="$share/big" bs=1M oflag=direct status=none || return  # not throttled: outside the cgroup
  drop_caches
  RES[twosource,alone]=$(direct_rate "$LOOPFS_CG" read "$share/big") || RES[twosource,alone]=FAILED
  log "twosource: share alone ${RES[twosource,alone]} MB/s (O_DIRECT, in the cgroup)"
  TWOSOURCE_ROWS=(obs fallback)
  "$DSFS_BIN" --help 2>&1 | grep -q 'fallback_parallel' && TWOSOURCE_ROWS+=(fallback-off)
  MOUNTS+=("$mnt")
  CUR_CLIENT=dsfs STEP_NOW=twosource
  RES[twosource,status]=ok
  for ((r = 1; r <= RUNS; r++)); do
    for row in "${TWOSOURCE_ROWS[@]}"; do
      case $row in
        obs) DSFS_CGROUP="" DSFS_EXTRA_OPTS="" ;;
        fallback) DSFS_CGROUP=$LOOPFS_CG DSFS_EXTRA_OPTS="fallback=$share" ;;
        fallback-off) DSFS_CGROUP=$LOOPFS_CG DSFS_EXTRA_OPTS="fallback=$share,fallback_parallel=0" ;;
      esac
      # shellcheck disable=SC2046  # no word or one
      dsfs_cold "$mnt" "$cache" "$row" $([[ $row == obs ]] || echo prove) && runs[$row]+="$COLD_MBPS "
    done
  done
  unmount_client "$mnt"
  DSFS_CGROUP="" DSFS_EXTRA_OPTS=""
  for row in "${TWOSOURCE_ROWS[@]}"; do
    # shellcheck disable=SC2086  # space-separated run values
    RES[twosource,$row]=$(median ${runs[$row]:-})
    log "twosource $row: ${runs[$row]:-FAILED}"
  done
  loopfs_cleanup
}

slowdisk_report() {  # the slowdisk table (inside bench.sh's report)
  echo
  echo "slowdisk: dsfs with cache_dir on a loop-device ext4 throttled (blkio, dsfs in the cgroup) to ${RES[slowdisk,bps]} B/s; MB/s, median of $RUNS"
  echo "disk alone = dd bs=1M iflag=direct of a ${SIZE_MB} MiB file on it (write: oflag=direct, 256 MiB), from the cgroup"
  printf '%-22s %9s %6s\n' "" MB/s GETs "disk alone read" "${RES[slowdisk,alone]:-FAILED}" - \
    "disk alone write" "${RES[slowdisk,alone_w]:-FAILED}" - \
    "dsfs cold" "${RES[slowdisk,cold]:-FAILED}" "${RES[slowdisk,gets_cold]:-?}" \
    "dsfs warm" "${RES[slowdisk,warm]:-FAILED}" "${RES[slowdisk,gets_warm]:-?}"
  echo "status ${RES[slowdisk,status]:-FAILED}; dsfs's I/O on the loop device charged to the cgroup: read ${RES[slowdisk,io_r]:-?} MiB, write ${RES[slowdisk,io_w]:-?} MiB"
  echo "  (written by the end of run 1's cold mount: ${RES[slowdisk,io_cold_w]:-?} MiB; cache dir then ${RES[slowdisk,cache_mib]:-?} MiB, big is ${SIZE_MB} MiB)"
  printf 'slowdisk cold/origin-ceiling %s (target 0.8)  warm/disk-alone %s (target 1.5)\n' \
    "$(ratio "${RES[slowdisk,cold]:-x}" "$ORIGIN")" "$(ratio "${RES[slowdisk,warm]:-x}" "${RES[slowdisk,alone]:-x}")"
}

twosource_report() {  # the twosource table
  local row l best
  echo
  echo "twosource: cold read of big (fresh cache on the work disk); the share = a loop-device ext4 throttled to ${RES[twosource,bps]} B/s holding the same bytes; MB/s, median of $RUNS"
  printf '%-26s %9s %6s %9s  %s\n' row cold GETs share-MiB "proof (user.dsfs.prove)"
  printf '%-26s %9s %6s %9s\n' "share alone (dd direct)" "${RES[twosource,alone]:-FAILED}" - -
  for row in "${TWOSOURCE_ROWS[@]}"; do
    case $row in obs) l="dsfs OBS only" ;; fallback) l="dsfs + fallback=share" ;; *) l="dsfs + fallback_parallel=0" ;; esac
    printf '%-26s %9s %6s %9s  %s\n' "$l" "${RES[twosource,$row]:-FAILED}" "${RES[twosource,$row,gets]:-?}" \
      "${RES[twosource,$row,share]:-?}" "${RES[twosource,$row,proof]:--}"
  done
  best=$(awk -v a="${RES[twosource,obs]:-x}" -v b="${RES[twosource,alone]:-x}" 'BEGIN { if (a !~ /^[0-9.]+$/) a = 0; if (b !~ /^[0-9.]+$/) b = 0; print (a > b ? a : b) }')
  printf 'twosource fallback/faster-source %s (target 1.6); status %s\n' "$(ratio "${RES[twosource,fallback]:-x}" "$best")" "${RES[twosource,status]:-FAILED}"
}
