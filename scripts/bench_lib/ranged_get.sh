#!/usr/bin/env bash
# Origin ceiling: fetch one object with N ranged GETs in flight (curl, SigV4).
# Usage: ranged_get.sh URL_BASE BUCKET KEY SIZE_BYTES [PARALLEL=16]
# Prints the rate in MB/s (1 MB = 10^6 bytes) on stdout.
set -euo pipefail
base=$1 bucket=$2 key=$3 size=$4 par=${5:-16}
chunk=$(( (size + par - 1) / par ))
start=$(date +%s.%N)
pids=()
for ((i = 0; i < par; i++)); do
  lo=$(( i * chunk )); hi=$(( lo + chunk - 1 ))
  (( lo >= size )) && break
  (( hi >= size )) && hi=$(( size - 1 ))
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "${AWS_ACCESS_KEY_ID:-S3RVER}:${AWS_SECRET_ACCESS_KEY:-S3RVER}" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -r "$lo-$hi" -o /dev/null \
    "$base/$bucket/$key" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
end=$(date +%s.%N)
if (( rc != 0 )); then echo "ranged_get: a GET failed" >&2; exit 1; fi
awk -v s="$size" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", s / (b - a) / 1e6 }'
