# A/B of cold `qa ask` wall time: a checkout of the previous commit (/tmp/oldwt: git worktree add /tmp/oldwt HEAD~1)
# against this one, alternating, 7 runs each, index of seeds/ built first (qa index with QA_INDEX_DIR=/tmp/seedsix).
export HF_HUB_OFFLINE=1 QA_INDEX_DIR=/tmp/seedsix QA_CORPUS=/work/main/seeds XDG_CACHE_HOME=/tmp/qc
Q="How old was Daniel Whitworth?"
for i in 1 2 3 4 5 6 7; do
  for wt in /tmp/oldwt /work/main; do
    cd $wt; s=$(date +%s.%N); /work/main/.venv/bin/python -m qa ask "$Q" >/dev/null 2>&1; e=$(date +%s.%N)
    echo "$wt $(echo "$e - $s" | bc)"
  done
done | awk '{a[$1]=a[$1]" "$2} END {for (k in a) print k, a[k]}'
