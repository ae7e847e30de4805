"""`data add NAME --csv/--zip` and `data remove NAME` (#21): the Data page's upload from the command line, through the
same `data.uploads` functions, so the same checks and messages; then the corpus is there for `data info` and `train`."""
import io
import json
import os
import subprocess
import sys
import zipfile

import pandas as pd

from support import REPO


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


def csv_file(tmp_path, rows=None, name="r.csv"):
    df = pd.DataFrame(rows or {"review": ["Great film, loved it.", "Awful. Walked out.", "Fine cast.", ""],
                               "sentiment": ["pos", "neg", "pos", "neg"], "is_valid": ["0", "0", "1", "0"]})
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def class_zip(tmp_path, files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    p = tmp_path / "folders.zip"
    p.write_bytes(buf.getvalue())
    return p


def test_add_csv_then_info_then_remove(tmp_path, home):
    r = cli("data", "add", "mine", "--csv", csv_file(tmp_path), "--text-col", "review", "--label-col", "sentiment",
            "--valid-col", "is_valid", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_docs"] == 3 and out["labels"] == ["neg", "pos"] and out["splits"] == {"train": 2, "valid": 1}
    assert out["problems"] == ["1 rows with empty text were left out"]  # the upload's own wording
    info = json.loads(cli("data", "info", "mine", "--json").stdout)
    assert info["n_docs"] == 3
    assert "mine" in {x["name"] for x in json.loads(cli("data", "list", "--json").stdout)}
    again = cli("data", "add", "mine", "--csv", csv_file(tmp_path), "--text-col", "review")
    assert again.returncode == 1 and "already exists" in again.stderr and "--replace" in again.stderr
    assert cli("data", "add", "mine", "--csv", csv_file(tmp_path), "--text-col", "review", "--replace").returncode == 0
    r = cli("data", "remove", "mine")
    assert r.returncode == 0 and "Removed corpus 'mine'" in r.stdout
    assert not (home / "datasets" / "mine").exists()
    r = cli("data", "remove", "mine")
    assert r.returncode == 1 and "no uploaded corpus 'mine'" in r.stderr


def test_csv_checks_say_what_was_wrong(tmp_path):
    from ulmfit_demo.data import corpora, uploads

    f = csv_file(tmp_path)
    cases = [
        (("--text-col", "text"), "no column 'text'. Columns found: 'review', 'sentiment', 'is_valid'"),
        ((), "--csv needs --text-col"),
    ]
    for extra, said in cases:
        r = cli("data", "add", "x", "--csv", f, *extra)
        assert r.returncode == 1 and said in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr  # one line
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = cli("data", "add", "x", "--csv", empty, "--text-col", "t")
    try:
        uploads.import_csv("x", b"", "t")
    except corpora.CorpusError as e:
        page_says = str(e)
    assert r.returncode == 1 and r.stderr.strip() == f"error: {page_says}"  # the upload's message, word for word
    r = cli("data", "add", "../evil", "--csv", f, "--text-col", "review")
    assert r.returncode == 1 and "not a valid corpus name" in r.stderr
    r = cli("data", "add", "demo", "--csv", f, "--text-col", "review")
    assert r.returncode == 1 and "built-in corpus" in r.stderr
    r = cli("data", "add", "x", "--csv", tmp_path / "nope.csv", "--text-col", "review")
    assert r.returncode == 1 and "no CSV file" in r.stderr
    r = cli("data", "add", "x", "--csv", f, "--zip", f)
    assert r.returncode == 2 and "not allowed with" in r.stderr  # argparse: one source


def test_add_zip_of_class_folders_and_its_refusals(tmp_path, home):
    z = class_zip(tmp_path, {"top/pos/1.txt": "Loved it.", "top/neg/2.txt": "Hated it.",
                             "top/neg/3.txt": b"caf\xe9 latin-1", "top/neg/readme.md": "x"})
    r = cli("data", "add", "folders", "--zip", z, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_docs"] == 3 and out["labels"] == ["neg", "pos"]
    assert any("not .txt" in p for p in out["problems"]) and any("3.txt" in p for p in out["problems"])
    bad = class_zip(tmp_path, {"../escape/pos/1.txt": "x"})
    r = cli("data", "add", "evil", "--zip", bad)
    assert r.returncode == 1 and "refused, nothing was stored" in r.stderr
    assert not (home / "datasets" / "evil").exists()
    notzip = tmp_path / "n.zip"
    notzip.write_text("hello")
    r = cli("data", "add", "n", "--zip", notzip)
    assert r.returncode == 1 and "not a zip archive" in r.stderr
    r = cli("data", "add", "n", "--zip", z, "--text-col", "t")
    assert r.returncode == 1 and "are for --csv" in r.stderr
    r = cli("data", "remove", "demo")
    assert r.returncode == 1 and "built in and cannot be deleted" in r.stderr
