"""The package's layout holds: only `ulmfit_demo/ui/` brings in Streamlit, no layer imports a layer above it, no
modules import each other in a circle, the package's own modules are imported at the top of a module (where a reader
looks) except the few deferrals listed here with their reasons, and what the pages import opens without torch or
fastai.

Data flows one way: pages/CLI -> ui -> runs -> train -> models -> judge/text -> data -> config/io. The worker, the
CLI and every test of the logic must be able to run without Streamlit, and the training stages must never reach back
up into the run machinery that drives them.
"""
import ast
import importlib
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
# train runs fastai and stores what it made through models; models never reaches up into train.
RANKS = {"config": 0, "io": 0, "system": 0, "plots": 0, "data": 1, "text": 2, "judge": 2, "models": 3, "train": 4,
         "runs": 5, "cli": 6, "ui": 6}

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


# ----------------------------------------------------------------------------------------------------------- graph

def own_imports(path: Path, root: Path, top: str = "ulmfit_demo") -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) for every import of the package `top` in `path`, resolved to the module it
    loads: `from top.a import b` is `top.a.b` when b is a submodule, else `top.a`. Python runs a package's
    `__init__` before any of its submodules; that is how packages work, not an arrow of this file, so it is not
    counted."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    me = module_name_in(path, root)
    here = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    known = {module_name_in(p, root) for p in root.joinpath(top).rglob("*.py")}
    in_function = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(fn))
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for n in dict.fromkeys(names):
            if n in known and n != me:
                out.append((n, node.lineno, id(node) in in_function))
    return out


def module_name_in(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def circles(root: Path, top: str = "ulmfit_demo") -> list[list[str]]:
    "Groups of modules that import each other in a loop (strongly connected components of the import graph)."
    mods = {module_name_in(p, root): p for p in root.joinpath(top).rglob("*.py")
            if "__pycache__" not in p.parts and p.name != "__main__.py"}
    edges = {m: {n for n, _, _ in own_imports(p, root, top)} for m, p in mods.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    "No modules of the package import each other in a loop, counting imports inside functions."
    found = circles(REPO)
    assert not found, "modules that import each other in a loop:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_circle_check_finds_a_circle(tmp_path):
    "The check above can fail: a loop through a function-level import, three modules long, is found."
    pkg = tmp_path / "ulmfit_demo"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "one.py").write_text("from ulmfit_demo.a import two\n")
    (pkg / "a" / "two.py").write_text("def f():\n    from ulmfit_demo import three\n")
    (pkg / "three.py").write_text("from .a.one import x\nimport ulmfit_demo.a\n")
    assert circles(tmp_path) == [["ulmfit_demo.a.one", "ulmfit_demo.a.two", "ulmfit_demo.three"]]


# Imports of the package's own modules that stay inside a function, each for a reason given in a `# deferred:`
# comment on its line. Everything else is imported at the top of its module.
DEFERRED = {
    # `runs list` and `train --help` import cli.train; the worker imports fastai and torch (seconds).
    "ulmfit_demo.cli.train": {"ulmfit_demo.runs.worker"},
}


def function_level_imports(root: Path = REPO) -> dict[str, set[str]]:
    "{module: {own modules it imports inside a function}}."
    out = {}
    for p in package_modules() if root == REPO else sorted(root.joinpath("ulmfit_demo").rglob("*.py")):
        late = {n for n, _, inside in own_imports(p, root) if inside}
        if late:
            out[module_name_in(p, root)] = late
    return out


def test_own_modules_are_imported_at_the_top():
    "No function-level import of the package's own modules outside DEFERRED, and each deferral says why."
    found = function_level_imports()
    extra = {m: sorted(late - DEFERRED.get(m, set())) for m, late in found.items() if late - DEFERRED.get(m, set())}
    assert not extra, ("imports of the package's own modules inside functions (move them to the top of the module; "
                       f"or, where a page must open without torch, list them in DEFERRED with a reason): {extra}")
    stale = {m: sorted(want - found.get(m, set())) for m, want in DEFERRED.items() if want - found.get(m, set())}
    assert not stale, f"DEFERRED lists imports that are no longer made inside a function (drop them): {stale}"
    for m, names in DEFERRED.items():
        path = REPO / (m.replace(".", "/") + ".py")
        lines = path.read_text().splitlines()
        for n, line, inside in own_imports(path, REPO):
            if inside and n in names:
                assert "# deferred:" in lines[line - 1], f"{m} line {line}: say why with a '# deferred:' comment"


def test_the_function_level_check_finds_one(tmp_path):
    "The check above can fail: an import of the package inside a method is found, a top-level one is not."
    pkg = tmp_path / "ulmfit_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("")
    (pkg / "high.py").write_text("import json\nfrom ulmfit_demo import low\n\nclass A:\n    def f(self):\n"
                                 "        from ulmfit_demo.low import x\n        import torch\n")
    assert function_level_imports(tmp_path) == {"ulmfit_demo.high": {"ulmfit_demo.low"}}


# The heavy libraries a page must not wait for when it opens: the functions that need them import them.
HEAVY = ("torch", "fastai", "sklearn", "spacy", "sentencepiece")


def page_side_modules() -> list[str]:
    "The package's modules that app.py, the pages and ui/ import at their top."
    out = set()
    for p in [REPO / "app.py", *sorted((REPO / "pages").glob("*.py")), *sorted(UI.glob("*.py"))]:
        out.update(n for n, _, inside in own_imports(p, REPO) if not inside)
    return sorted(out)


def test_pages_open_without_torch_or_fastai(tmp_path):
    "Importing every module the pages import, in a fresh interpreter, loads none of HEAVY."
    mods = page_side_modules()
    assert "ulmfit_demo.models.inference" in mods and len(mods) > 20, mods
    code = ("import importlib, json, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
            f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))")
    env = dict(os.environ, PYTHONPATH=str(REPO), ULMFIT_DEMO_HOME=str(tmp_path / "home"), ULMFIT_DEMO_OFFLINE="1")
    p = subprocess.run([sys.executable, "-c", code, *mods], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [], "importing the pages' modules loaded these"


def test_the_cli_table_names_every_command_its_modules_register():
    "cli.COMMANDS (what `--help` shows without importing the command modules) lists exactly what they register."
    import argparse

    from ulmfit_demo import cli

    registered = {}
    for m in cli.MODULES:
        p = argparse.ArgumentParser()
        sub = p.add_subparsers(dest="command")
        importlib.import_module(f"ulmfit_demo.cli.{m}").register(sub)
        registered.update({name: (m, action.help) for action in sub._choices_actions
                           for name in [action.dest]})
    assert registered == cli.COMMANDS
