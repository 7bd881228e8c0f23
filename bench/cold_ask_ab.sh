# A/B of cold `qa ask` wall time: checkouts alternating, RUNS (7) runs each, median last; by default a checkout of
# the previous commit (/tmp/oldwt: git worktree add /tmp/oldwt HEAD~1) against /work/main. The index of seeds/ is
# built first (qa index with QA_INDEX_DIR as below). Usage: bash bench/cold_ask_ab.sh [CHECKOUT ...]
# RUN="chrt -f 10" runs each ask at real-time priority (root only): other work on the machine then barely moves it.
# Bytecode must be writable (PYTHONDONTWRITEBYTECODE unset): compiling qa/ and index/ each run added about 25 ms.
unset PYTHONDONTWRITEBYTECODE
export HF_HUB_OFFLINE=1 QA_INDEX_DIR=${QA_INDEX_DIR:-/tmp/seedsix} QA_CORPUS=/work/main/seeds XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/qc}
Q="How old was Daniel Whitworth?"
for i in $(seq ${RUNS:-7}); do
  for wt in ${@:-/tmp/oldwt /work/main}; do
    cd $wt; s=$(date +%s.%N); $RUN /work/main/.venv/bin/python -m qa ask "$Q" >/dev/null 2>&1; e=$(date +%s.%N)
    echo "$wt $(echo "$e - $s" | bc)"
  done
done | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    checkout, seconds = line.split()
    runs.setdefault(checkout, []).append(float(seconds))
for checkout, times in runs.items():
    print(checkout, " ".join(f"{t:.3f}" for t in times), f"median {statistics.median(times):.3f}")'
