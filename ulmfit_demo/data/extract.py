"""Safe extraction of tar and zip archives.

Every member is checked before a byte is written: no absolute paths, no `..`, no links, devices or fifos. Extraction
stops at limits on total bytes, entry count and compression ratio (zip bombs). Work happens in a temp folder beside
the destination, renamed into place only when complete, so a refused, failed or cancelled extraction leaves nothing.
"""
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

Progress = Callable[[str, float | None], None]


class UnsafeArchive(ValueError):
    "The archive holds something we refuse to write: the message names the member and the reason."


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 4 * 1024**3  # full IMDb unpacks to ~133 MB; 4 GB leaves room for bigger real corpora
    max_entries: int = 500_000  # full IMDb has 100,010
    max_ratio: float = 100.0  # text compresses ~4-10x; 100x past the first 10 MB is a bomb
    ratio_floor: int = 10 * 1024**2


DEFAULT_LIMITS = Limits()


def _check_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"refused: member {name!r} has an absolute path")
    if ".." in p.parts:
        raise UnsafeArchive(f"refused: member {name!r} points outside the archive folder ('..')")
    return p


def _members_tar(tf: tarfile.TarFile, limits: Limits, packed: int):
    total = 0
    for i, m in enumerate(tf):
        if i >= limits.max_entries:
            raise UnsafeArchive(f"refused: more than {limits.max_entries:,} entries")
        _check_name(m.name)
        if m.issym() or m.islnk():
            raise UnsafeArchive(f"refused: member {m.name!r} is a link")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"refused: member {m.name!r} is a device, fifo or other special file")
        total += m.size
        if total > limits.max_bytes:
            raise UnsafeArchive(f"refused: unpacks to more than {limits.max_bytes:,} bytes")
        if total > limits.ratio_floor and total > limits.max_ratio * packed:
            raise UnsafeArchive(f"refused: compression ratio above {limits.max_ratio:.0f}x (a zip bomb?)")
        yield m


def _zip_check(zf: zipfile.ZipFile, limits: Limits):
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchive(f"refused: more than {limits.max_entries:,} entries")
    total = packed = 0
    for zi in infos:
        _check_name(zi.filename)
        # Unix zips keep the file type in the high bits; many tools write permissions alone (type 0 = plain file).
        ftype = stat.S_IFMT(zi.external_attr >> 16)
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"refused: member {zi.filename!r} is a link or special file")
        total += zi.file_size
        packed += zi.compress_size
        if total > limits.max_bytes:
            raise UnsafeArchive(f"refused: unpacks to more than {limits.max_bytes:,} bytes")
        if zi.file_size > limits.ratio_floor and zi.file_size > limits.max_ratio * max(zi.compress_size, 1):
            raise UnsafeArchive(f"refused: member {zi.filename!r} has a compression ratio above "
                                f"{limits.max_ratio:.0f}x (a zip bomb?)")
    if total > limits.ratio_floor and total > limits.max_ratio * max(packed, 1):
        raise UnsafeArchive(f"refused: compression ratio above {limits.max_ratio:.0f}x (a zip bomb?)")
    return infos, total


def _copy_capped(src, dst_path: Path, cap: int) -> int:
    "Copy at most `cap` bytes: the sizes in a header can lie, the stream cannot."
    n = 0
    with open(dst_path, "wb") as out:
        while chunk := src.read(1 << 20):
            n += len(chunk)
            if n > cap:
                raise UnsafeArchive("refused: a member unpacks to more bytes than its header says")
            out.write(chunk)
    return n


def extract(archive: Path, dest: Path, limits: Limits = DEFAULT_LIMITS, progress: Progress | None = None) -> Path:
    """Extract `archive` (.tgz/.tar/.tar.gz/.zip) so its contents land in `dest`, which must not exist yet.
    Returns `dest`. Raises `UnsafeArchive` (nothing written) or whatever `progress` raises to cancel."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.extract-"))
    report = progress or (lambda msg, frac: None)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp, limits, report)
        else:
            _extract_tar(archive, tmp, limits, report)
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _extract_tar(archive: Path, tmp: Path, limits: Limits, report: Progress):
    packed = archive.stat().st_size
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.TarError as e:
        raise UnsafeArchive(f"not a readable tar or zip archive: {e}") from None
    with tf:
        written = 0
        for i, m in enumerate(_members_tar(tf, limits, packed)):
            target = tmp / _check_name(m.name)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            written += _copy_capped(src, target, max(m.size, 0))
            if i % 500 == 0:
                # For .tgz, the GzipFile's own fileobj is the packed file: its position is a true fraction of the work.
                raw = getattr(tf.fileobj, "fileobj", tf.fileobj)
                pos = raw.tell() if hasattr(raw, "tell") else 0
                report(f"Extracting {archive.name}: {i:,} files", min(pos / max(packed, 1), 1.0))
    report(f"Extracted {archive.name}", 1.0)


def _extract_zip(archive: Path, tmp: Path, limits: Limits, report: Progress):
    with zipfile.ZipFile(archive) as zf:
        infos, total = _zip_check(zf, limits)
        done = 0
        for i, zi in enumerate(infos):
            target = tmp / _check_name(zi.filename)
            if zi.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(zi) as src:
                done += _copy_capped(src, target, zi.file_size)
            if i % 200 == 0:
                report(f"Extracting {archive.name}: {i:,} files", done / max(total, 1))
    report(f"Extracted {archive.name}", 1.0)
