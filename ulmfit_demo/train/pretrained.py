"""Where a language model's starting weights come from (DESIGN.md, "Pretrained encoders").

fastai's WikiText-103 AWD-LSTM (`URLs.WT103_FWD` / `URLs.WT103_BWD`) is found in the same order as corpora:
1. fastai's model cache, `config.fastai_models()/'wt103-fwd'` (a user who ran the fastai notebook already has it);
2. an archive `wt103-fwd.tgz` in `$ULMFIT_DEMO_MIRROR` (a folder or a base URL), extracted safely into that cache;
3. fastai's own download, unless `ULMFIT_DEMO_OFFLINE` is set;
4. otherwise None: the run trains from scratch and records a loud warning saying what was tried and how to fix it.

Loading never unpickles code: weights go through `torch.load(weights_only=True)` and the vocabulary pickle through an
unpickler that refuses every global (a list of strings needs none).
"""
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Callable

from ulmfit_demo import config
from ulmfit_demo.data.download import download
from ulmfit_demo.data.extract import extract

Progress = Callable[[str, float | None], None]
NAMES = {False: "wt103-fwd", True: "wt103-bwd"}
FASTAI_URL_ATTR = {False: "WT103_FWD", True: "WT103_BWD"}


def _complete(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.pth")) and any(folder.glob("*.pkl"))


def local(backwards: bool = False) -> Path | None:
    "The WT103 folder if it is in fastai's model cache now (no extraction, no download): what the page can promise."
    p = config.fastai_models() / NAMES[backwards]
    return p if _complete(p) else None


def hint(backwards: bool = False) -> str:
    "How a person provides the weights, in one sentence."
    return (f"Put fastai's {NAMES[backwards]}.tgz (from {_url(backwards) or 'fastai'}) in a folder and set "
            f"ULMFIT_DEMO_MIRROR to it, or let the app download it once (unset ULMFIT_DEMO_OFFLINE), or unpack it "
            f"into {config.fastai_models() / NAMES[backwards]}.")


def _url(backwards: bool) -> str | None:
    try:
        from fastai.data.external import URLs
    except Exception:  # noqa: BLE001 - only used in a message
        return None
    return getattr(URLs, FASTAI_URL_ATTR[backwards])


def find(backwards: bool = False, progress: Progress | None = None) -> tuple[Path | None, list[str]]:
    "The folder holding the weights (`*.pth`) and vocab (`*.pkl`), fetching it if allowed; and what was tried."
    name = NAMES[backwards]
    report = progress or (lambda msg, frac: None)
    dest = config.fastai_models() / name
    if _complete(dest):
        return dest, [f"fastai's model cache ({dest}): found"]
    tried = [f"fastai's model cache ({dest}): not there"]
    archive = None
    cached = config.fastai_models().parent / "archive" / f"{name}.tgz"
    if cached.is_file():
        archive = cached
        tried.append(f"fastai's archive folder ({cached}): found")
    m = config.mirror()
    if archive is None:
        if m is None:
            tried.append("mirror: ULMFIT_DEMO_MIRROR is not set")
        elif re.match(r"^https?://", m):
            if config.offline():
                tried.append(f"mirror {m}: not tried (ULMFIT_DEMO_OFFLINE)")
            else:
                try:
                    archive = _download(m.rstrip("/") + f"/{name}.tgz", name, report)
                    tried.append(f"mirror {m}: downloaded")
                except Exception as e:  # noqa: BLE001 - any network failure means: try the next source
                    tried.append(f"mirror {m}: {type(e).__name__}: {e}")
        else:
            p = Path(m).expanduser() / f"{name}.tgz"
            if p.is_file():
                archive = p
                tried.append(f"mirror {p}: found")
            else:
                tried.append(f"mirror {Path(m).expanduser()}: has no {name}.tgz")
    if archive is None:
        if config.offline():
            tried.append("online download: switched off (ULMFIT_DEMO_OFFLINE)")
        else:
            url = _url(backwards)
            try:
                archive = _download(url, name, report)
                tried.append(f"online {url}: downloaded")
            except Exception as e:  # noqa: BLE001
                tried.append(f"online {url}: {type(e).__name__}: {e}")
    if archive is None:
        return None, tried
    try:
        return _install(archive, name, report), tried
    except Exception as e:  # noqa: BLE001 - a bad archive means: train from scratch, and say why
        tried.append(f"{archive}: could not be used ({e})")
        return None, tried


def _download(url: str, name: str, report: Progress) -> Path:
    return download(url, config.fastai_models().parent / "archive" / f"{name}.tgz", report)


def _install(archive: Path, name: str, report: Progress) -> Path:
    "Safe extraction into a staging folder, then one rename into fastai's model cache."
    models = config.fastai_models()
    models.mkdir(parents=True, exist_ok=True)
    staging = models / f".{name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(archive, staging, progress=report)
        # fastai's archive holds `wt103-fwd/lstm_fwd.pth` + `itos_wt103.pkl`; accept the files at the root too.
        src = staging / name if (staging / name).is_dir() else staging
        if not _complete(src):
            raise ValueError(f"expected a .pth and a .pkl file inside {name}/")
        dest = models / name
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _NoGlobals(pickle.Unpickler):
    "A vocabulary is a list of strings: refusing every global makes a hostile pickle harmless."
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a vocabulary file")


def load_vocab(path: Path) -> list[str]:
    with open(path, "rb") as f:
        vocab = _NoGlobals(f).load()
    if not isinstance(vocab, (list, tuple)) or not all(isinstance(t, str) for t in vocab):
        raise ValueError(f"{path} does not hold a list of tokens")
    return list(vocab)


def load(folder: Path) -> tuple[dict, list[str]]:
    "(state dict, vocab) from a WT103-style folder."
    import torch

    wgts = torch.load(next(Path(folder).glob("*.pth")), map_location="cpu", weights_only=True)
    if "model" in wgts:  # saved together with an optimizer
        wgts = wgts["model"]
    return wgts, load_vocab(next(Path(folder).glob("*.pkl")))
