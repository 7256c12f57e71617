#!/usr/bin/env bash
# Builds the libFuzzer target for the pure survey parsing code with clang++
# (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time.
# Exit code non-zero on a build failure, a crash or a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${SURVEY_FUZZ_SECONDS:-30}
OUT=$(mktemp -d /tmp/survey-fuzz.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Isrc test/fuzz/survey_fuzz.cpp src/core/survey_step_name.cpp src/core/survey_session_id.cpp \
  -o "$OUT/survey_fuzz"

mkdir -p "$OUT/corpus"
cp test/fuzz/survey_corpus/* "$OUT/corpus/"
# -max_len covers inputs beyond the 200-byte step name limit.
rc=0
"$OUT/survey_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=512 -timeout=10 \
  -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/corpus" >"$OUT/fuzz.log" 2>&1 || rc=$?
tail -25 "$OUT/fuzz.log"
if [ "$rc" -ne 0 ]; then
  echo "survey fuzz: FAILED (exit $rc)"; for f in "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-*; do [ -e "$f" ] && base64 -w0 "$f" && echo; done; exit 1
fi
echo "survey fuzz: no crash in ${SECONDS_TO_RUN}s"
