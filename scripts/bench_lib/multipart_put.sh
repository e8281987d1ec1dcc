#!/usr/bin/env bash
# Origin write ceiling: upload FILE as KEY with a multipart upload whose
# parts (PART_MB each) go up PARALLEL at a time (curl, SigV4), the best a
# client can do through the origin. The parts are cut from FILE before the
# clock starts.
# Usage: multipart_put.sh URL_BASE BUCKET KEY FILE [PART_MB=16] [PARALLEL=16]
# Prints the rate in MB/s (1 MB = 10^6 bytes) on stdout.
set -euo pipefail
base=$1 bucket=$2 key=$3 file=$4 part_mb=${5:-16} par=${6:-16}
ak=${AWS_ACCESS_KEY_ID:-S3RVER} sk=${AWS_SECRET_ACCESS_KEY:-S3RVER}
s3() {
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
size=$(stat -c %s "$file")
parts=$(mktemp -d "${TMPDIR:-/tmp}/mpput.XXXXXX")
trap 'rm -rf "$parts"' EXIT
split -b "${part_mb}M" -d -a 5 "$file" "$parts/p."
n=$(find "$parts" -name 'p.*' | wc -l)

start=$(date +%s.%N)
upload_id=$(s3 -X POST "$base/$bucket/$key?uploads" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
[[ -n $upload_id ]] || { echo "multipart_put: CreateMultipartUpload failed" >&2; exit 1; }
put_part() {  # put_part NUMBER: writes the part's ETag to $parts/e.NUMBER
  local i=$1 f
  f=$(printf '%s/p.%05d' "$parts" $((i - 1)))
  s3 -T "$f" -D "$parts/h.$i" -o /dev/null "$base/$bucket/$key?partNumber=$i&uploadId=$upload_id" &&
    tr -d '\r' <"$parts/h.$i" | sed -n 's/^[Ee][Tt]ag: *//p' >"$parts/e.$i"
}
running=0 rc=0
for ((i = 1; i <= n; i++)); do
  put_part "$i" &
  running=$((running + 1))
  if ((running >= par)); then wait -n || rc=1; running=$((running - 1)); fi
done
while ((running > 0)); do wait -n || rc=1; running=$((running - 1)); done
((rc == 0)) || { echo "multipart_put: a part failed" >&2; exit 1; }
{
  echo "<CompleteMultipartUpload>"
  for ((i = 1; i <= n; i++)); do
    echo "<Part><PartNumber>$i</PartNumber><ETag>$(cat "$parts/e.$i")</ETag></Part>"
  done
  echo "</CompleteMultipartUpload>"
} >"$parts/complete.xml"
s3 -X POST --data-binary "@$parts/complete.xml" -o /dev/null "$base/$bucket/$key?uploadId=$upload_id" ||
  { echo "multipart_put: CompleteMultipartUpload failed" >&2; exit 1; }
end=$(date +%s.%N)
awk -v s="$size" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", s / (b - a) / 1e6 }'
