import os

# Before torch loads OpenMP: waiting threads sleep instead of spinning (see runs/launcher.py, where workers get it too).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ulmfit_demo.cli import main  # noqa: E402

raise SystemExit(main())
