#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The tour: runs every chapter executable of a build (bin/ch00_collectives, ... in order)
# under mpirun with --quiet (each chapter prints its summary table only) and --json, then
# prints one table: chapter, ranks, checks passed, communication matching its formula, time.
# It builds nothing; build first (README):  cmake --preset cpu && cmake --build --preset cpu
#
#   scripts/tour.sh                              # build/cpu, CPU backend
#   scripts/tour.sh build/cuda --backend cuda    # another build; the rest goes to every chapter
#
# The summaries stay in <build>/tour/<chapter>.json. Exit status 0 only if every chapter ran
# and passed all its checks.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/cpu
if [[ $# -gt 0 && $1 != -* ]]; then build=$(cd "$1" && pwd); shift; fi
chapter_args=("$@")

# Ranks per chapter (4 unless listed) and the chapter's own options, where the tour shows a
# layout other than the chapter's default: chapter 07 on the course's 16-rank grid, tp 2 x pp 4 x
# dp 2, which its step 4 trains (3D) and step 7 places on nodes of 8.
declare -A NP=([ch07_hybrid_parallel]=16)
declare -A ARGS=([ch07_hybrid_parallel]="--tp 2 --pp 4 --layers 4 --steps 10")
default_np=4

# The same MPI environment as the tests: FIVEFOLD_MPI_ENV in cmake/Fivefold.cmake (run as root,
# more ranks than cores, no ptrace single-copy inside containers).
while read -r assignment; do
  export "$assignment"
done < <(sed -n '/^set(FIVEFOLD_MPI_ENV/,/)/p' "$root/cmake/Fivefold.cmake" | grep -o '[A-Za-z_][A-Za-z0-9_]*=[^ )]*')

# The chapters are the directories chapters/NN_topic; each builds bin/chNN_topic (the exercise
# programs beside it, chNN_ex*, are for the tests).
shopt -s nullglob
chapters=()
for dir in "$root"/chapters/[0-9][0-9]_*/; do
  exe=$build/bin/ch$(basename "$dir")
  if [[ -x $exe ]]; then chapters+=("$exe"); fi
done
if [[ ${#chapters[@]} -eq 0 ]]; then
  echo "tour: no chapter executables in $build/bin; build first: cmake --preset cpu && cmake --build --preset cpu" >&2
  exit 1
fi
command -v mpirun >/dev/null || { echo "tour: mpirun not found; run scripts/setup.sh" >&2; exit 1; }

out=$build/tour
mkdir -p "$out"
rows=()   # "chapter ranks exit_status wall_ms json_path" per chapter
for exe in "${chapters[@]}"; do
  name=$(basename "$exe")
  np=${NP[$name]:-$default_np}
  read -r -a own_args <<< "${ARGS[$name]:-}"
  json=$out/$name.json
  rm -f "$json"
  cmd=(mpirun --oversubscribe -np "$np" "$exe" "${own_args[@]}" --quiet --json "$json" "${chapter_args[@]}")
  echo
  echo "== $name on $np ranks: ${cmd[*]//"$root"\//}"
  start=$(date +%s%N)
  status=0
  "${cmd[@]}" || status=$?
  rows+=("$name $np $status $((($(date +%s%N) - start) / 1000000)) $json")
done

# The table, from each chapter's --json summary (the Python standard library reads JSON).
python3 - "${rows[@]}" <<'EOF'
import json, os, sys

failed = 0
print("\n%-24s %5s %8s %8s %9s  %s" % ("chapter", "ranks", "checks", "comm", "time (s)", "result"))
for row in sys.argv[1:]:
    name, np, status, wall_ms, path = row.split(" ", 4)
    checks = comm = "-"
    time_s = int(wall_ms) / 1000  # wall time seen here, unless the summary has the chapter's own
    ok = status == "0"
    result = "passed" if ok else "FAILED (exit %s)" % status
    if os.path.exists(path):
        with open(path) as f:
            summary = json.load(f)
        c = summary.get("checks", [])
        checks = "%d/%d" % (sum(1 for x in c if x.get("passed")), len(c))
        m = summary.get("comm", [])
        matched = sum(1 for x in m if x.get("calls") == x.get("predicted_calls")
                      and x.get("payload_bytes") == x.get("predicted_payload_bytes"))
        comm = "%d/%d" % (matched, len(m))
        time_s = summary.get("time_s", time_s)
    elif ok:
        ok, result = False, "FAILED (no --json summary)"
    failed += not ok
    print("%-24s %5s %8s %8s %9.2f  %s" % (name, np, checks, comm, time_s, result))
print("\n%d of %d chapters passed; summaries in %s"
      % (len(sys.argv) - 1 - failed, len(sys.argv) - 1, os.path.dirname(path)))
sys.exit(1 if failed else 0)
EOF
