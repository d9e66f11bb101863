#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kills one rank of a 4-rank chapter run midway and checks that the whole job ends, non-zero,
# within 10 s, with no rank left running (test fault.kill_rank; label fault).
#   kill_rank.sh MPIEXEC EXE ARGS...
set -u
mpiexec=$1 exe=$2
shift 2
log=$(mktemp)
"$mpiexec" --oversubscribe -n 4 "$exe" "$@" >"$log" 2>&1 &
launcher=$!
ranks() { pgrep -f -- "^$exe" || true; }  # the rank processes (the launcher's command line starts with mpiexec)
for _ in $(seq 1 100); do  # up to 10 s for the four ranks to start
  [[ $(ranks | wc -l) -ge 4 ]] && break
  sleep 0.1
done
if [[ $(ranks | wc -l) -lt 4 ]]; then
  echo "FAIL: the 4 ranks of $exe did not start"; cat "$log"; kill "$launcher" 2>/dev/null; exit 1
fi
sleep 1  # midway: the ranks are training
victim=$(ranks | tail -n 1)
echo "killing rank process $victim with SIGKILL"
kill -9 "$victim"
start=$SECONDS
rc=
for _ in $(seq 1 100); do  # up to 10 s for the job to end
  if ! kill -0 "$launcher" 2>/dev/null; then wait "$launcher"; rc=$?; break; fi
  sleep 0.1
done
elapsed=$((SECONDS - start))
left=$(ranks | wc -l)
if [[ -z $rc ]]; then
  echo "FAIL: the job still runs 10 s after one rank was killed (a hang)"; pkill -9 -f -- "^$exe"; kill -9 "$launcher"; exit 1
fi
if [[ $rc -eq 0 ]]; then echo "FAIL: the job exited 0 after losing a rank"; cat "$log"; exit 1; fi
if [[ $left -ne 0 ]]; then echo "FAIL: $left rank process(es) still running"; pkill -9 -f -- "^$exe"; exit 1; fi
echo "PASS: the job ended with status $rc in ${elapsed} s, no rank left running"
rm -f "$log"
