#!/usr/bin/env bash
# CPU cost per completion, without the commit wait: one pgbench client,
# synchronous_commit = off, the same four designs as run.sh, interleaved,
# three rounds of 3000 calls each. Less sensitive to other load on the
# machine than the throughput run. Usage: bench/engine/cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/engine/setup.sh
declare -A SUM
for round in 1 2 3; do
  for d in "${DESIGNS[@]}"; do
    lat=$(PGOPTIONS="-c synchronous_commit=off" "$WF_PG_BINDIR/pgbench" -n -M prepared -c 1 -t 3000 \
      -D n=-1 -D base=$((round * 3000)) -D clients=1 -f "bench/engine/$d.pgbench" 2>&1 \
      | grep -oE 'latency average = [0-9.]+' | grep -oE '[0-9.]+$')
    echo "round $round $d: $lat ms"
    SUM[$d]=$(awk -v a="${SUM[$d]:-0}" -v b="$lat" 'BEGIN { print a + b }')
  done
done
echo
echo "| design | ms per call (mean of 3 rounds) | vs bare |"
echo "|---|---|---|"
for d in "${DESIGNS[@]}"; do
  awk -v d="$d" -v s="${SUM[$d]}" -v b="${SUM[bare]}" 'BEGIN { printf "| %s | %.3f | %.2fx |\n", d, s / 3, s / b }'
done
