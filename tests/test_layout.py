"""The package's layout holds: only `ulmfit_demo/ui/` brings in Streamlit, and no layer imports a layer above it.

Data flows one way: pages/CLI -> ui -> runs -> train/models -> text -> data -> config/io. The worker, the CLI
and every test of the logic must be able to run without Streamlit, and the training stages must never reach back
up into the run machinery that drives them.
"""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "ulmfit_demo"
UI = PKG / "ui"

# Rank of each subpackage (and top-level module): a module may import its own rank or lower, never higher.
# train and models share a rank (neither is above the other). Modules not named here are not ranked.
RANKS = {"config": 0, "io": 0, "system": 0, "plots": 0, "data": 1, "text": 2, "judge": 2, "train": 3, "models": 3, "runs": 4,
         "cli": 5, "ui": 5}

STREAMLIT_IMPORT = re.compile(r"^\s*(import\s+streamlit\b|from\s+streamlit\b)", re.M)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> list[Path]:
    "Every module of the package, `__main__` left out (importing it runs the CLI)."
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts and p.name != "__main__.py")


def imported_names(path: Path) -> set[str]:
    """Every `ulmfit_demo...` module `path` imports, at the top or inside a function: `from ulmfit_demo.x import y`
    counts as both `ulmfit_demo.x` and `ulmfit_demo.x.y` (y may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a relative import starts from
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in out if n == "ulmfit_demo" or n.startswith("ulmfit_demo.")}


def rank(name: str) -> int | None:
    parts = name.split(".")
    return RANKS.get(parts[1]) if len(parts) > 1 else None


# Imports the given modules one at a time in this interpreter, and stops at the first one after which streamlit is
# loaded (or that does not import at all).
PROBE = r"""
import importlib, json, sys
for i, name in enumerate(sys.argv[1:]):
    try:
        importlib.import_module(name)
    except BaseException as e:
        print(json.dumps({"i": i, "module": name, "error": f"{type(e).__name__}: {e}"}))
        raise SystemExit(0)
    if "streamlit" in sys.modules:
        print(json.dumps({"i": i, "module": name, "error": "pulled streamlit into sys.modules"}))
        raise SystemExit(0)
print(json.dumps({"i": None}))
"""


def test_no_module_outside_ui_loads_streamlit(tmp_path):
    "Imported one by one in a fresh interpreter, no module outside `ulmfit_demo/ui/` leaves streamlit loaded."
    todo = [module_name(p) for p in package_modules() if UI not in p.parents and p.parent != UI]
    assert len(todo) > 30, todo  # the walk found the package
    env = dict(os.environ, PYTHONPATH=str(REPO), ULMFIT_DEMO_HOME=str(tmp_path / "home"), ULMFIT_DEMO_OFFLINE="1")
    bad = []
    while todo:  # a fresh interpreter again after each offender, so one bad module does not hide another
        p = subprocess.run([sys.executable, "-c", PROBE, *todo], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=180)
        assert p.returncode == 0 and p.stdout.strip(), p.stderr[-3000:]
        res = json.loads(p.stdout.strip().splitlines()[-1])
        if res["i"] is None:
            break
        bad.append(f"{res['module']}: {res['error']}")
        todo = todo[res["i"] + 1:]
    assert not bad, "modules outside ulmfit_demo/ui/ that load streamlit or fail to import:\n" + "\n".join(bad)


def test_only_ui_modules_import_streamlit():
    "The source of every module that imports streamlit lies under `ulmfit_demo/ui/` (pages/ and app.py are outside)."
    outside = [str(p.relative_to(REPO)) for p in package_modules()
               if UI not in p.parents and p.parent != UI and STREAMLIT_IMPORT.search(p.read_text(encoding="utf-8"))]
    assert not outside, f"these import streamlit but are not in ulmfit_demo/ui/: {outside}"
    assert any(STREAMLIT_IMPORT.search(p.read_text()) for p in UI.glob("*.py"))  # the pattern does find imports


def test_training_stages_never_import_the_run_machinery():
    "No module under `ulmfit_demo/train/` imports `ulmfit_demo.runs`, not even inside a function."
    offenders = {str(p.relative_to(REPO)): sorted(n for n in imported_names(p)
                                                  if n == "ulmfit_demo.runs" or n.startswith("ulmfit_demo.runs."))
                 for p in package_modules() if (PKG / "train") in p.parents}
    assert offenders, "found no modules under ulmfit_demo/train/"
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"train/ must not import the run machinery (move what it needs lower): {offenders}"


def test_no_layer_imports_a_layer_above_it():
    "The import graph of the ranked subpackages only points down (or sideways within a rank)."
    upward = []
    for p in package_modules():
        mine = rank(module_name(p))
        if mine is None:
            continue
        for name in imported_names(p):
            theirs = rank(name)
            if theirs is not None and theirs > mine:
                upward.append(f"{p.relative_to(REPO)} imports {name}")
    assert not upward, "imports that point up the layers:\n" + "\n".join(sorted(set(upward)))
