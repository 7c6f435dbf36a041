#!/bin/bash
# Interleaved A/B of the 2-worker cache: the multiprocessing.Pool version (a worktree of b99c8ff at
# /tmp/oldtree) against the executor (this checkout), and the 1-worker path for reference.
#   git worktree add /tmp/oldtree b99c8ff && python docs/cache_speedup/make_tree.py
#   bash docs/cache_speedup/ab.sh > docs/cache_speedup/ab_pool_vs_executor.log
for i in $(seq 1 12); do
  echo "old2 $(PYTHONPATH=/tmp/oldtree/src python docs/cache_speedup/one_run.py 2 2>/dev/null | tail -1)"
  echo "new2 $(python docs/cache_speedup/one_run.py 2 2>/dev/null | tail -1)"
  echo "new1 $(python docs/cache_speedup/one_run.py 1 2>/dev/null | tail -1)"
done
