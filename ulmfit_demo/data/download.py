"""One download path for everything the app fetches (corpora and pretrained weights): fastai's own downloader
(fastcore's `urlsave`), written to a `.part` name and renamed into place only when complete, so an interrupted
download never leaves a file that looks finished."""
import os
from pathlib import Path
from typing import Callable

Progress = Callable[[str, float | None], None]


def download(url: str, dest: Path, report: Progress) -> Path:
    "Fetch `url` to `dest`, reporting `(message, fraction or None)` as bytes arrive."
    from fastcore.net import urlsave

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")

    def hook(count=1, bsize=1, total=None):
        frac = min(count * bsize / total, 1.0) if total and total > 0 else None
        report(f"Downloading {dest.name}: {count * bsize / 1e6:,.1f} MB", frac)

    try:
        urlsave(url, tmp, reporthook=hook, timeout=60)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
