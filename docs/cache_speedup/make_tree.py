"""Write the x1 real-format demo tree and split it under ROOT (default /tmp/bc), with params for 1 and 2 workers.

Run from the repo root: python docs/cache_speedup/make_tree.py [ROOT]
"""
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, "benchmarks")
import bench_cache as bc  # noqa: E402

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bc")
root.mkdir(parents=True, exist_ok=True)
raw = bc.redirected_params(Path("params.yaml"), root, 1)
print(bc.in_subprocess("prepare", raw, root / "params-demo.yaml"))
for w in (1, 2):
    r = json.loads(json.dumps(raw))
    r["cache"]["workers"] = w
    r["cache"]["dir"] = str(root / f"cache-w{w}")
    (root / f"p{w}.yaml").write_text(yaml.safe_dump(r, sort_keys=False))
