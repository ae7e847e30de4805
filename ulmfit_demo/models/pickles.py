"""What a pickle would import, read without running it (`pickle_imports`), and which of those names a fastai text
model has no reason to import (`unexpected_imports`): shown beside the trust question before a `.pkl` is opened.
"""
import io
import zipfile
from pathlib import Path

PICKLE_RISK = ("A fastai .pkl file is a Python pickle: opening it runs whatever code its author put inside, with your "
               "permissions (it could read, change or delete your files). Only import a .pkl you made yourself or got "
               "from someone you trust; a model bundle (.zip) carries no code and is always safe to import.")


def pickle_imports(path: Path, limit: int = 200) -> list[str]:
    """The modules and names a pickle (or torch zip) would import when opened, read without executing it: shown
    beside the trust question so a person can see, e.g., `os.system` before saying yes."""
    import pickletools

    path = Path(path)
    blobs = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")][:4]
    else:
        blobs = [path.read_bytes()]
    found: list[str] = []
    for blob in blobs:
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(io.BytesIO(blob)):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(arg)
                elif op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # noqa: BLE001 - a malformed pickle still gets the warning; listing is best effort
            found.append("(the rest could not be read)")
    out = list(dict.fromkeys(found))
    return out[:limit]


# What a fastai text export legitimately imports; anything else (os.system, builtins.exec, subprocess...) is named
# to the person before they decide to trust the file.
EXPECTED_MODULES = ("fastai", "fastcore", "torch", "numpy", "pandas", "spacy", "sentencepiece", "thinc", "srsly",
                    "pathlib", "collections", "_codecs", "copyreg", "functools", "typing", "fastprogress", "re",
                    "catalogue", "cymem", "preshed", "blis", "murmurhash", "plum", "enum", "dataclasses", "cloudpickle",
                    "fasttransform", "inspect", "random", "confection", "weasel", "wasabi")
EXPECTED_BUILTINS = {"set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "getattr", "dict", "list",
                     "tuple", "object", "type", "int", "float", "str", "bool", "long", "unicode",
                     "print"}  # print: fastai stores it as the default logger


def unexpected_imports(names: list[str]) -> list[str]:
    "Names from `pickle_imports` that a fastai text model has no reason to import."
    out = []
    for n in names:
        mod, _, attr = n.partition(".")
        if mod in ("builtins", "__builtin__"):
            if attr not in EXPECTED_BUILTINS:
                out.append(n)
        elif mod not in EXPECTED_MODULES:
            out.append(n)
    return out
