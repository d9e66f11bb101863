#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes rank 1 of a 4-rank chapter run fail one check on purpose (FIVEFOLD_FAIL_CHECK_ON_RANK, a
# test hook of the harness) and checks that EVERY rank exits non-zero, not only rank 1 (test
# fault.fail_check; label fault).
#   fail_check.sh MPIEXEC EXE ARGS...
set -u
mpiexec=$1 exe=$2
shift 2
export FIVEFOLD_FAIL_CHECK_ON_RANK=1
# The job's status, as mpiexec reports it ...
"$mpiexec" --oversubscribe -x FIVEFOLD_FAIL_CHECK_ON_RANK -n 4 "$exe" "$@" >/dev/null 2>&1
rc=$?
# ... and each rank's own (a shell around every rank prints it).
out=$("$mpiexec" --oversubscribe -x FIVEFOLD_FAIL_CHECK_ON_RANK -n 4 \
      sh -c '"$0" "$@"; echo "rank exit status $?"' "$exe" "$@" 2>&1)
statuses=$(grep -c "^rank exit status [1-9]" <<<"$out")
if [[ $rc -eq 0 || $statuses -ne 4 ]]; then
  echo "FAIL: job status $rc, $statuses of 4 ranks exited non-zero. Output:"; echo "$out"; exit 1
fi
grep -q "failed on purpose" <<<"$out" || { echo "FAIL: the injected failure is not reported"; echo "$out"; exit 1; }
echo "PASS: job status $rc; all 4 ranks exited non-zero"
