#!/bin/bash
# Footprint of the deskbridge agent: RSS and CPU% over 60 s, reporting at 1 Hz to a local relay.
# A benchmark, not a test. Build first: cargo build --release -p deskbridge-agent -p deskbridge-relay
# Usage: agent/scripts/footprint.sh [TARGET_DIR (target/release)] [PORT (18090)]
# CPU is read twice: from /proc/PID/stat (10 ms ticks, coarse) and summed over every thread's
# /proc/PID/task/*/schedstat (nanoseconds). RSS is sampled every second from /proc/PID/status,
# and /usr/bin/time -v reports the peak over the whole run including startup.
set -uo pipefail
T=${1:-target/release}; PORT=${2:-18090}
W=$(mktemp -d)
"$T/deskbridge-relay" serve --listen 127.0.0.1:$PORT --allow-anonymous >"$W/relay.log" 2>&1 &
RELAY=$!
sleep 1
HOME=$W /usr/bin/time -v -o "$W/time.txt" \
  "$T/deskbridge-agent" run --relay ws://127.0.0.1:$PORT/ws --id bench >"$W/agent.log" 2>&1 &
TIMEPID=$!
sleep 1
AGENT=$(pgrep -P $TIMEPID)
sleep 4   # warm-up: connected, first samples sent
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$AGENT/stat)
ns0=$(cat /proc/$AGENT/task/*/schedstat | awk '{s+=$1} END {print s}')
RSS=()
for i in $(seq 1 60); do
  RSS+=($(awk '/^VmRSS/{print $2}' /proc/$AGENT/status)); sleep 1
done
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$AGENT/stat)
ns1=$(cat /proc/$AGENT/task/*/schedstat | awk '{s+=$1} END {print s}')
THREADS=$(ls /proc/$AGENT/task | wc -l)
HWM=$(awk '/^VmHWM/{print $2}' /proc/$AGENT/status)
TICKS=$(( (u1-u0) + (s1-s0) ))
HZ=$(getconf CLK_TCK)
echo "agent pid $AGENT"
printf 'cpu over 60 s: %d ticks (user %d, sys %d) at %d Hz = %.3f %% of one core\n' \
  $TICKS $((u1-u0)) $((s1-s0)) $HZ "$(echo "$TICKS / $HZ / 60 * 100" | bc -l)"
printf 'cpu over 60 s from schedstat (all %d threads): %d us = %.4f %% of one core\n' \
  $THREADS $(( (ns1-ns0)/1000 )) "$(echo "($ns1-$ns0) / 60000000000 * 100" | bc -l)"
printf 'RSS KiB: min %s max %s, VmHWM %s\n' "$(printf '%s\n' "${RSS[@]}" | sort -n | head -1)" \
  "$(printf '%s\n' "${RSS[@]}" | sort -n | tail -1)" "$HWM"
curl -s http://127.0.0.1:$PORT/metrics | grep -iE "^deskbridge_messages[a-z_]*\{.*cpu" | head -5
kill -TERM $AGENT; wait $TIMEPID
grep -E "Maximum resident|User time|System time|Elapsed" "$W/time.txt"
kill -TERM $RELAY; wait $RELAY
echo "--- agent log"; cat "$W/agent.log"
