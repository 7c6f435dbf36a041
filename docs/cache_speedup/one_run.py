"""One cache-stage run on make_tree.py's tree with W workers, from an empty cache: wall and CPU seconds.

Run: python docs/cache_speedup/one_run.py W [ROOT]
"""
import resource
import shutil
import sys
import time

from flowmimic.params import load_params
from flowmimic.stages import cache

w = int(sys.argv[1])
root = sys.argv[2] if len(sys.argv) > 2 else "/tmp/bc"
params = load_params(f"{root}/p{w}.yaml")
shutil.rmtree(params.cache.dir, ignore_errors=True)
thread0, before, t0 = time.thread_time(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
cache.main(params)
wall, main_thread = time.perf_counter() - t0, time.thread_time() - thread0
after, pool = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(w, f"mainthread {main_thread:.3f} wall {wall:.3f} main user {after.ru_utime - before.ru_utime:.3f} "
      f"sys {after.ru_stime - before.ru_stime:.3f} children {pool.ru_utime:.3f}+{pool.ru_stime:.3f} "
      f"nvcsw {after.ru_nvcsw - before.ru_nvcsw} nivcsw {after.ru_nivcsw - before.ru_nivcsw}")
