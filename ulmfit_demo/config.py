"""Where the app keeps its files, and where corpora may come from. Read from the environment on each call so tests
(and users) can point them elsewhere without re-importing."""
import configparser
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"


def home() -> Path:
    "`$ULMFIT_DEMO_HOME` (default `~/.ulmfit_demo`), created on first use."
    p = Path(os.environ.get("ULMFIT_DEMO_HOME", "~/.ulmfit_demo")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def sub(name: str) -> Path:
    "A folder under the home: `runs`, `models`, `datasets` or `cache`."
    p = home() / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def offline() -> bool:
    "`ULMFIT_DEMO_OFFLINE=1`: never download (tests set it; a mirror that is a local folder is still used)."
    return os.environ.get("ULMFIT_DEMO_OFFLINE", "") not in ("", "0", "false")


def mirror() -> str | None:
    "`$ULMFIT_DEMO_MIRROR`: a folder or a base URL holding fastai-named archives, or None."
    m = os.environ.get("ULMFIT_DEMO_MIRROR", "").strip()
    return m or None


def _fastai_path(key: str) -> Path:
    # Same answer as `fastai.data.external.fastai_path(key)`, read without importing fastai (seconds per page render).
    base = Path(os.environ.get("FASTAI_HOME", "~/.fastai")).expanduser()
    cfg = configparser.ConfigParser()
    cfg.read(base / "config.ini")
    p = Path(cfg["DEFAULT"].get(key, key)).expanduser()
    return p if p.is_absolute() else base / p


def fastai_data() -> Path:
    "fastai's own data cache (`~/.fastai/data`), so a user who ran the fastai notebook is not made to download again."
    return _fastai_path("data")


def fastai_models() -> Path:
    "fastai's pretrained-model cache (`~/.fastai/models`)."
    return _fastai_path("model")


def atomic_write(path: Path, data: bytes | str) -> Path:
    "Write via a temp file in the same folder, fsync, then `os.replace`: a crash leaves the old file or the new one."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def pid_alive(pid: int) -> bool:
    "Whether process `pid` still runs; a zombie (killed, not yet reaped by its parent) does not."
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):  # no /proc (macOS): os.kill said it exists
        return True
