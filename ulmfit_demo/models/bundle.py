"""Model bundles: a zip with a model's files, its metadata and a README showing how to load it with ULMFiT Studio or
plain fastai / scikit-learn (`export_bundle`); and installing one as a new model (`import_bundle`).

A bundle carries no code, so importing one is always safe: only the known members are read, each within size
limits, and the files are checked against the metadata before anything is stored. What a bundle holds is the kind's
own business (`kinds.Model.export_bundle` / `import_bundle`): an AWD-LSTM's weights, a baseline's two files each
checked against its recorded sha256, an ensemble's metadata and each member's own bundle.
"""
import io
import json
import zipfile
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.models import kinds
from ulmfit_demo.models.checks import _check_meta, baseline_files
from ulmfit_demo.models.kinds import BUNDLE_README, MAX_BUNDLE_MEMBER, MAX_META_BYTES  # noqa: F401 - the API's names
from ulmfit_demo.models.registry import META, SPM, WEIGHTS, ModelError, _check_id


def export_bundle(model_id: str, out: Path) -> Path:
    "A zip with the model's files, metadata and a README; written atomically to `out`."
    return config.atomic_write(Path(out), kinds.bundle_bytes(kinds.open(_check_id(model_id))))


def bundle_bytes(model_id: str) -> bytes:
    return kinds.bundle_bytes(kinds.open(_check_id(model_id)))


def import_bundle(data: bytes | Path, name: str | None = None) -> str:
    """Install a zip from `export_bundle` as a new model and return its id. Reads only the known members, checks the
    weights against the metadata (shapes, vocab, architecture) before anything is stored."""
    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else data
    if not raw:
        raise ModelError("The bundle is empty: pick the .zip exported from the Models page or `models export`.")
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ModelError("This file is not a model bundle (.zip). A fastai export.pkl is imported with the trust "
                         "option instead.") from None
    with z:
        members = {i.filename: i for i in z.infolist()}
        if META not in members:
            raise ModelError(f"The bundle has no {META}: it was not exported by ULMFiT Studio. Files in it: "
                             f"{', '.join(list(members)[:10]) or 'none'}.")
        for m in (META, WEIGHTS, SPM, *baseline_files()):
            if m in members and members[m].file_size > MAX_BUNDLE_MEMBER:
                raise ModelError(f"{m} in the bundle is {members[m].file_size:,} bytes: too large to be a model.")
        if members[META].file_size > MAX_META_BYTES:
            raise ModelError(f"{META} in the bundle is {members[META].file_size:,} bytes: too large.")
        try:
            meta = json.loads(z.read(META))
        except (ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{META} in the bundle cannot be read ({e}).") from None
        if not isinstance(meta, dict):
            raise ModelError(f"{META} in the bundle is not a JSON object.")
        _check_meta(meta, "The bundle")
        return kinds.kind_class(meta["kind"]).import_bundle(z, meta, name, install=import_bundle)
