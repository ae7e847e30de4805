"""Safe extraction refuses what could escape the target folder or exhaust the disk, and leaves nothing behind."""
import io
import tarfile
import zipfile

import pytest

from ulmfit_demo.data.extract import Limits, UnsafeArchive, extract


def make_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def make_tgz(path, members: dict[str, bytes], links: dict[str, str] | None = None):
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            t.addfile(ti)
    return path


def test_good_archives_extract(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"c/pos/1.txt": b"good", "c/neg/2.txt": b"bad"})
    t = make_tgz(tmp_path / "a.tgz", {"c/pos/1.txt": b"good"})
    assert (extract(z, tmp_path / "z") / "c/neg/2.txt").read_bytes() == b"bad"
    assert (extract(t, tmp_path / "t") / "c/pos/1.txt").read_bytes() == b"good"


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/abs_evil.txt", "ok/../../evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_escaping_paths_refused_and_nothing_written(tmp_path, evil, kind):
    members = {"ok/1.txt": b"fine", evil: b"pwned"}
    arc = make_zip(tmp_path / "e.zip", members) if kind == "zip" else make_tgz(tmp_path / "e.tgz", members)
    dest = tmp_path / "sub" / "dest"
    with pytest.raises(UnsafeArchive, match="absolute|outside"):
        extract(arc, dest)
    assert not dest.exists()
    assert list((tmp_path / "sub").iterdir()) == []  # the staging folder is gone too
    assert not (tmp_path / "sub" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_links_refused(tmp_path):
    arc = make_tgz(tmp_path / "l.tgz", {"a.txt": b"x"}, links={"link": "/etc/passwd"})
    with pytest.raises(UnsafeArchive, match="link"):
        extract(arc, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_zip_bomb_refused_at_ratio_limit(tmp_path):
    # 50 MB of zeros deflates to ~50 KB: a ratio of ~1000x.
    arc = tmp_path / "bomb.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.txt", b"\0" * (50 * 1024**2))
    with pytest.raises(UnsafeArchive, match="compression ratio"):
        extract(arc, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_total_size_and_entry_limits(tmp_path):
    arc = make_tgz(tmp_path / "m.tgz", {f"f{i}.txt": b"abc" * 100 for i in range(20)})
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        extract(arc, tmp_path / "d1", limits=Limits(max_entries=10))
    with pytest.raises(UnsafeArchive, match="more than 1,000 bytes"):
        extract(arc, tmp_path / "d2", limits=Limits(max_bytes=1000))
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()


def test_cancel_from_progress_leaves_nothing(tmp_path):
    arc = make_tgz(tmp_path / "c.tgz", {f"f{i}.txt": b"x" for i in range(1200)})

    class Stop(Exception):
        pass

    def progress(msg, frac):
        if "files" in msg and not msg.endswith(": 0 files"):
            raise Stop

    with pytest.raises(Stop):
        extract(arc, tmp_path / "out" / "d", progress=progress)
    assert list((tmp_path / "out").iterdir()) == []


def test_zip_symlink_entry_refused(tmp_path):
    arc = tmp_path / "l.zip"
    with zipfile.ZipFile(arc, "w") as z:
        zi = zipfile.ZipInfo("link")
        zi.external_attr = (0o120777 << 16)  # S_IFLNK: how zip stores a symlink
        z.writestr(zi, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="link or special file"):
        extract(arc, tmp_path / "d")
    assert not (tmp_path / "d").exists()
