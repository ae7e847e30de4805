"""`python -m ulmfit_demo data ...` as a script would call it: a real subprocess, JSON on stdout."""
import json
import os
import subprocess
import sys
from pathlib import Path

from support import mirror_archive

REPO = Path(__file__).resolve().parent.parent


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_data_list_json():
    r = cli("data", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert {"demo", "imdb_sample", "imdb"} <= set(rows)
    assert rows["demo"]["available"] is True
    assert all(isinstance(x["available"], bool) for x in rows.values())


def test_data_info_imdb_sample_json():
    mirror_archive("imdb_sample.tgz")
    r = cli("data", "info", "imdb_sample", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"name": "imdb_sample", "n_docs": 1000, "by_split": {"train": 800, "valid": 200},
                                    "by_label": {"negative": 500, "positive": 500},
                                    "by_split_label": {"train": {"negative": 400, "positive": 400},
                                                       "valid": {"negative": 100, "positive": 100}}}


def test_data_info_full_imdb_json():
    mirror_archive("imdb.tgz")
    r = cli("data", "info", "imdb", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_docs"] == 100000
    assert out["by_split"] == {"test": 25000, "train": 25000, "unsup": 50000}
    # One label vocabulary: the folders are neg/pos, the corpus says negative/positive like every other one.
    assert out["by_label"] == {"": 50000, "negative": 25000, "positive": 25000}
    assert out["by_split_label"] == {"train": {"negative": 12500, "positive": 12500},
                                     "test": {"negative": 12500, "positive": 12500}, "unsup": {"": 50000}}


def test_data_get_prints_path_and_fails_with_one_line(tmp_path):
    mirror_archive("imdb_sample.tgz")
    r = cli("data", "get", "imdb_sample")
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip(), "texts.csv").is_file()
    bad = cli("data", "get", "imdb", env={"ULMFIT_DEMO_MIRROR": str(tmp_path), "FASTAI_HOME": str(tmp_path / "fh")})
    assert bad.returncode != 0 and bad.stdout == ""
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "has no imdb.tgz" in lines[0]
    bad = cli("data", "get", "../evil")
    assert bad.returncode != 0 and "not a valid corpus name" in bad.stderr
