"""Shared fixtures. Every test runs against a throwaway `$ULMFIT_DEMO_HOME` and `$FASTAI_HOME`, with corpora coming
from `$ULMFIT_DEMO_MIRROR` (default `../shared/data`) and online downloads switched off: tests never reach the
internet. A missing archive fails the test instead of skipping it (see `support.mirror_archive`)."""
import os
from pathlib import Path

import pytest

from support import mirror_archive

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "data"

os.environ.setdefault("ULMFIT_DEMO_MIRROR", str(DEFAULT_MIRROR))
os.environ["ULMFIT_DEMO_OFFLINE"] = "1"
# Two cores here and in CI: more threads than cores only adds contention between test processes.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives headless chromium against a live streamlit server")
    config.addinivalue_line("markers", "slow: trains real models (seconds to minutes)")


@pytest.fixture(scope="session")
def fastai_home(tmp_path_factory):
    "One fastai cache per test session: extracted corpora are shared between tests, never with the user's own cache."
    p = tmp_path_factory.mktemp("fastai_home")
    os.environ["FASTAI_HOME"] = str(p)
    return p


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, fastai_home):
    "A fresh, empty `$ULMFIT_DEMO_HOME` for each test."
    h = tmp_path / "home"
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(h))
    # The bundled sentiment model is left out unless a test asks for it (the `bundled` fixture): most tests are about
    # the models a user trains, and "no model yet" must stay testable.
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(tmp_path / "no-bundled-model"))
    return h


@pytest.fixture
def bundled(monkeypatch):
    "The bundled sentiment model shipped in assets/sentiment, as on a fresh machine."
    from ulmfit_demo.models import registry

    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(registry.BUNDLED_DIR))
    return registry.BUNDLED_DIR


@pytest.fixture
def bundled_awd(bundled):
    """The id of the shipped forward AWD-LSTM classifier: "bundled" when the bundled model is that classifier,
    its member "bundled.fwd" when the bundled model is an ensemble. For tests about one fastai classifier."""
    from ulmfit_demo.models import registry

    members = registry.bundled_members()
    if not members:
        return registry.BUNDLED_ID
    assert "bundled.fwd" in members, members
    return "bundled.fwd"


@pytest.fixture
def imdb_sample_archive():
    return mirror_archive("imdb_sample.tgz")


@pytest.fixture
def ids(home):
    "The tiny real models of `tiny_models` (trained once per process) registered in this test's home; their ids."
    import tiny_models

    return tiny_models.install(home)
