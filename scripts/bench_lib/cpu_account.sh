# shellcheck shell=bash
# CPU accounting for `bench.sh --cpu` (sourced by bench.sh; uses its PIDS
# (s3rver, proxy), CLIENT_PID and median).
#
# cpu_begin / cpu_end LABEL BYTES bracket one read; cpu_table RUNS LABEL...
# prints the medians per label in seconds per GiB read. Counters, in USER_HZ
# ticks (getconf CLK_TCK):
#   s3rver, proxy, daemon: utime+stime of the process, all threads
#                          (/proc/PID/stat fields 14+15); CPU_ORIGIN_PID and
#                          CPU_PROXY_PID, when set, name other origin and
#                          proxy processes (the write step's s3sink and its proxy)
#   reader: cutime+cstime of this shell (fields 16+17): every child it reaped
#           in between, i.e. the $(...) around dd or ranged_get.sh and its curls
#   machine: /proc/stat "cpu " line, busy = user+nice+system+irq+softirq,
#            idle = idle+iowait (steal is in neither)
#   other = machine busy minus the four above
# Snapshots use bash builtins only (no fork), so taking one costs the reader
# nothing.

CPU_TCK=$(getconf CLK_TCK)
CPU_CORES=$(grep -c '^cpu[0-9]' /proc/stat)
CPU_COLS=(wall origin proxy daemon reader other idle)
declare -A CPU_RUNS  # CPU_RUNS[LABEL,COL] = per-run values, space separated
CPU0=()

cpu_ticks() {  # cpu_ticks VAR PID FIELD: VAR = fields FIELD + FIELD+1 of /proc/PID/stat, - if no such PID
  local line f
  printf -v "$1" '%s' -
  [[ -n $2 ]] && read -r line 2>/dev/null <"/proc/$2/stat" || return 0
  read -ra f <<<"${line##*) }"  # f[0] is field 3
  printf -v "$1" '%d' $((f[$3 - 3] + f[$3 - 2]))
}

cpu_snap() {  # cpu_snap ARRAY: ARRAY = (wall-s s3rver proxy daemon reader busy idle)
  local -n snap=$1
  local s p d r line m
  cpu_ticks s "${CPU_ORIGIN_PID:-${PIDS[0]}}" 14
  cpu_ticks p "${CPU_PROXY_PID:-${PIDS[1]}}" 14
  cpu_ticks d "$CLIENT_PID" 14
  cpu_ticks r $$ 16
  read -r line </proc/stat
  read -ra m <<<"$line"  # cpu user nice system idle iowait irq softirq steal ...
  # shellcheck disable=SC2034  # snap is a nameref to the caller's array
  snap=("${EPOCHREALTIME/,/.}" "$s" "$p" "$d" "$r" $((m[1] + m[2] + m[3] + m[6] + m[7])) $((m[4] + m[5])))
}

cpu_begin() { cpu_snap CPU0; }

cpu_end() {  # cpu_end LABEL BYTES: record the read since cpu_begin, per GiB
  local cpu1 vals i
  cpu_snap cpu1
  vals=$(awk -v a="${CPU0[*]}" -v b="${cpu1[*]}" -v bytes="$2" -v t="$CPU_TCK" 'BEGIN {
    n = split(a, x); split(b, y); g = bytes / 1073741824
    for (i = 2; i <= n; i++) d[i] = (x[i] == "-" || y[i] == "-") ? "-" : (y[i] - x[i]) / t / g
    other = d[6]
    for (i = 2; i <= 5; i++) if (d[i] != "-") other -= d[i]
    print (y[1] - x[1]) / g, d[2], d[3], d[4], d[5], other, d[7] }')
  read -ra vals <<<"$vals"  # a $(...), not <(...): reaped here, not during the next read
  for i in "${!CPU_COLS[@]}"; do
    CPU_RUNS[$1,${CPU_COLS[i]}]+="${vals[i]} "
  done
}

# shellcheck disable=SC2059  # fmt is a constant
cpu_table() {  # cpu_table RUNS LABEL...: one row of medians per label, FAILED if it has no run
  local l c v row fmt='%-12s %6s %15s %6s %7s %7s %6s %6s\n'
  echo "cpu-s per GiB during each read (cold reads; rows *-warm: the warm read after the remount; rows *-write and ceiling-put: the write step, origin = s3sink, reader = the writer; median of $1); machine has $CPU_CORES cores"
  printf "$fmt" run wall-s 'origin(s3rver)' proxy daemon reader other idle
  for l in "${@:2}"; do
    row=()
    for c in "${CPU_COLS[@]}"; do
      # shellcheck disable=SC2086  # the space-separated run values
      v=$(median ${CPU_RUNS[$l,$c]:-})
      [[ $v == [0-9-]*[0-9] ]] && v=$(printf '%.2f' "$v")
      row+=("$v")
    done
    [[ ${row[0]} == FAILED ]] && row=(FAILED - - - - - -)
    printf "$fmt" "$l" "${row[@]}"
  done
}
