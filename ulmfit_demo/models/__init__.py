"""Saved models: safetensors weights + JSON metadata under `$ULMFIT_DEMO_HOME/models/<model_id>/`, a SQLite registry
beside them, and everything that uses them. One module per job:

- `registry`: which models exist (list, get, resolve a name or `latest`, rename, delete), ids and the folder format.
- `arch`: a fastai AWD-LSTM's architecture as JSON (`describe_model`) and back (`build_model`).
- `checks`: the checks every stored model passes before its weights are used (`load_weights_checked`).
- `store`: saving a Learner as a model folder (`save_learner`), or the TF-IDF baseline (`save_baseline`, kind
  `baseline`), and rebuilding either (`load` -> `Loaded`).
- `kinds`: the one interface every kind of model answers to (`Model`: predict, predict_batch, attributions,
  generate, describe, bundles), the table of kinds and `open` (one opened model per id per process, cached).
- `awd` (AWD-LSTM `Classifier` and `LanguageModel`), `tfidf` (the TF-IDF `Baseline`), `ensemble` (`Ensemble`:
  several classifiers of one label set averaging their probabilities): the kinds, each registering itself.
- `starter`: the starter language models shipped in `assets/` (found, checked against their manifest, loaded).
- `shipped`: a stored model written as the bundled sentiment model's folder (one classifier, or an ensemble with
  its members' folders inside, `bundled.<sub>`), with the manifest every load checks.
- `bundle`: the model zip, exported and imported (no code inside, so always safe to import).
- `fastai_export`: fastai's `learn.export()` pickle, exported for fastai users and imported with `trust=True`.
- `pickles`: what a pickle would import, read without running it, shown before the trust question.
- `inference`: using models by id (predict, batches, attributions, generated text, CSV scoring).
- `interpret`: a classifier's confusion matrix and most confident mistakes on a corpus.

Loading rebuilds the AWD-LSTM from the stored architecture and vocab and fills it from safetensors: nothing is ever
unpickled, so a model file cannot run code. Importing a fastai `export.pkl` runs its pickle and so needs `trust=True`.

The registry, store, bundle and fastai names are re-exported here, so `from ulmfit_demo import models;
models.load(...)` reads as one API; the using modules are imported by name (`from ulmfit_demo.models import
inference`). Pages import this package: fastai, torch and safetensors are imported inside the functions that need
them. Above `judge`, `text` and `data`; below `train` and `runs`.
"""
# Each registers its kinds in `kinds`, in this order (pickers list kinds in it); the ensemble after those it combines.
from ulmfit_demo.models import awd, tfidf  # noqa: F401
from ulmfit_demo.models import ensemble  # noqa: F401,I001
from ulmfit_demo.models.arch import build_model, describe_model
from ulmfit_demo.models.bundle import (BUNDLE_README, MAX_BUNDLE_MEMBER, MAX_META_BYTES, bundle_bytes, export_bundle,
                                       import_bundle)
from ulmfit_demo.models.checks import load_weights_checked
from ulmfit_demo.models.fastai_export import export_fastai, fastai_bytes, import_pkl
from ulmfit_demo.models.pickles import (EXPECTED_BUILTINS, EXPECTED_MODULES, PICKLE_RISK, pickle_imports,
                                        unexpected_imports)
from ulmfit_demo.models.registry import (FORMAT, FORMAT_VERSION, KINDS, META, SPM, WEIGHTS, ModelError, delete, get,
                                         list_models, models_dir, read_meta, rename, resolve, stamp)
from ulmfit_demo.models.store import Loaded, load, save_baseline, save_learner, sp_model_path
