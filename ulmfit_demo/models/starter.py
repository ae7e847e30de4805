"""The starter language models shipped in `assets/`: where they are, their cards, checking and loading them.

fastai's WikiText-103 weights cannot be fetched offline, so the app ships its own small AWD-LSTMs pretrained on CPU
from the mirror's unlabelled-use text with SentencePiece subwords: `assets/starter_lm` reads forwards,
`assets/starter_lm_bwd` backwards (for backward runs and the forward+backward ensemble). `starter_build` makes them
(`python -m ulmfit_demo train --kind pretrain --preset starter`); this module only reads them, checked against their
manifest first.
"""
import json
import os
import time
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.io import sha256


# ------------------------------------------------------------------------------------------------------ loading

FILES = ("lm.safetensors", "vocab.json", "spm.model", "card.json")
MANIFEST = "manifest.json"
# Shipped with the app; `ULMFIT_DEMO_STARTER` points elsewhere (a rebuilt starter, or a tiny one in tests).
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "starter_lm"
REBUILD = "python -m ulmfit_demo train --kind pretrain --preset starter"


def folder(backwards: bool = False) -> Path:
    "The forward starter's folder, or the backward one's (`<forward folder>_bwd`)."
    fwd = Path(os.environ.get("ULMFIT_DEMO_STARTER") or DEFAULT_DIR)
    return fwd.with_name(fwd.name + "_bwd") if backwards else fwd


def card(path: Path | None = None) -> dict | None:
    "The starter's card (cheap: no hashing, no torch), or None when there is no starter."
    try:
        return json.loads((Path(path or folder()) / "card.json").read_text())
    except (OSError, ValueError):
        return None


SOURCES = {"imdb": "IMDb reviews", "imdb_sample": "IMDb reviews", "wikitext2_small": "Wikipedia",
           "yelp_sentences": "Yelp sentences", "amazon_reviews": "Amazon product reviews", "demo": "the demo reviews"}


def read_from(c: dict | None) -> str:
    "What a starter read, in words, from its card: 'IMDb reviews and Wikipedia'."
    names = [SOURCES.get(n, n) for n in ((c or {}).get("config", {}).get("corpora") or ["imdb", "wikitext2_small"])]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def arch(path: Path | None = None) -> dict | None:
    "`{emb_sz, n_hid, n_layers}` of the starter, which a run starting from it must use."
    c = card(path)
    return {k: c["arch"][k] for k in ("emb_sz", "n_hid", "n_layers")} if c else None


class StarterError(ValueError):
    "The starter files are missing or damaged: the message says which file and what to do."


def write_manifest(folder: Path, files=FILES) -> dict:
    "sha256 and size of each file, checked by `check` before the files are used."
    folder = Path(folder)
    man = {f: {"sha256": sha256(folder / f), "bytes": (folder / f).stat().st_size} for f in files}
    config.atomic_write(folder / MANIFEST, json.dumps(man, indent=1))
    return man


def check(folder: Path, what: str = "starter language model", rebuild: str = "") -> dict:
    "The manifest, after checking every file it lists; `StarterError` naming the first missing or damaged one."
    folder = Path(folder)
    try:
        man = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise StarterError(f"The bundled {what} in {folder} cannot be used: {MANIFEST} is missing or unreadable "
                           f"({type(e).__name__}). Restore the folder from git (`git checkout -- {folder.name}`)"
                           f"{rebuild}.") from None
    seen = []
    for name, want in man.items():
        p = folder / name
        if not p.is_file():
            raise StarterError(f"The bundled {what} cannot be used: {p} is missing. Restore it from git "
                               f"(`git checkout -- {p}`){rebuild}.")
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, want.get("sha256"))
        if key in _HASHED:  # hashed already by this process, and not written since
            continue
        if st.st_size != want["bytes"] or sha256(p) != want["sha256"]:
            raise StarterError(f"The bundled {what} cannot be used: {p} is damaged (its checksum does not match "
                               f"{MANIFEST}). Restore it from git (`git checkout -- {p}`){rebuild}.")
        if time.time() - st.st_mtime > 2:  # only a file at rest: a write after this moves its time on
            seen.append(key)
    _HASHED.update(seen)
    return man


# Files `check` found whole, by path, size, modification time, inode and expected hash: the bundled model's members
# each check the whole folder before use (about 50 MB), and a process opening all four would hash it four times.
# Anything written to a file later moves its modification time on (only files last written over 2 s before their
# hashing are remembered, so a coarse clock cannot hide a write), and such a file is hashed, and refused, again.
_HASHED: set = set()


def load(path: Path | None = None) -> tuple[dict, list[str], Path, dict]:
    "(fp32 LM state dict with the tied decoder restored, vocab, SentencePiece model path, card), checked first."
    import torch
    from safetensors.torch import load_file

    folder = Path(path or globals()["folder"]())
    check(folder, rebuild=f" or rebuild it: {REBUILD}")
    from fastai.text.all import AWD_LSTM, get_language_model

    saved = {k: v.to(torch.float32) for k, v in load_file(str(folder / "lm.safetensors")).items()}
    saved["1.decoder.weight"] = saved["0.encoder.weight"]
    vocab = json.loads((folder / "vocab.json").read_text())
    card = json.loads((folder / "card.json").read_text())
    # safetensors stores keys sorted; fastai's loaders match weights by position, so give them the model's order.
    cfg = {k: v for k, v in card["arch"].items() if k not in ("drop_mult", "seq_len")}
    order = get_language_model(AWD_LSTM, len(vocab), config=cfg).state_dict().keys()
    missing = [k for k in order if k not in saved]
    if missing or len(saved) != len(order):
        raise StarterError(f"The bundled starter's weights do not fit its card's architecture ({missing[:3]}); "
                           f"rebuild it: {REBUILD}.")
    return {k: saved[k] for k in order}, vocab, folder / "spm.model", card


def encoder_of(lm_state: dict) -> dict:
    "The AWD-LSTM part of a language model's state dict (`save_encoder`'s content)."
    return {k[2:]: v for k, v in lm_state.items() if k.startswith("0.")}
