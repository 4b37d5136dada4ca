#!/bin/sh
# Runs every fuzz target for SECONDS each (default 600) from the committed corpora, one after
# another, on one core. New inputs go to a scratch corpus; crashes to artifacts/<target>/.
set -e
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
for t in parse check run generated; do
    mkdir -p "scratch/$t"
    cargo +nightly fuzz run -O "$t" "scratch/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 -max_len=8192 \
        -print_final_stats=1 2>&1 | tail -30 > "scratch/$t.log" || echo "$t: FAILED (see scratch/$t.log)"
done
