"""Helpers shared by test modules. Test modules import from here, never from `conftest`: with two conftest.py files
(tests/ and tests/browser/) `from conftest import ...` resolves to whichever was loaded last."""
import os
from pathlib import Path

import pytest


def mirror_archive(name: str) -> Path:
    """Path of `name` in the mirror. A missing archive fails the test (CI must never pass by skipping); set
    `ULMFIT_DEMO_ALLOW_MISSING_MIRROR=1` on a machine without `../shared/data` to skip instead."""
    p = Path(os.environ["ULMFIT_DEMO_MIRROR"]) / name
    if not p.is_file():
        msg = f"{name} not found in ULMFIT_DEMO_MIRROR={os.environ['ULMFIT_DEMO_MIRROR']}"
        if os.environ.get("ULMFIT_DEMO_ALLOW_MISSING_MIRROR") == "1":
            pytest.skip(msg)
        pytest.fail(msg + " (set ULMFIT_DEMO_ALLOW_MISSING_MIRROR=1 to skip instead)")
    return p


REPO = Path(__file__).resolve().parent.parent


def run_page(path: str, timeout: float = 120, **state):
    "Run a page (path relative to the repo) in `AppTest` with `state` preset; fail on any exception it shows."
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / path), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at
