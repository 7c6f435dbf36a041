"""`python -m flowmimic ...` (what `torchrun -m flowmimic train` runs)."""

from flowmimic.cli import main

raise SystemExit(main())
