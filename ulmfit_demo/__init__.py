"""ULMFiT Studio: the ULMFiT transfer-learning workflow (fastai, AWD-LSTM) as importable, testable functions.

One subpackage per domain, as fastai's own `fastai.text`: `data` (corpora, safe extraction, token cache, batch
previews), `text` (tokenizers, vocab, decoding), `train` (presets and the ULMFiT stages), `models` (saved models,
their registry, bundles and fastai export, inference), `runs` (the run store and worker processes), `cli`
(`python -m ulmfit_demo`) and `ui` (the only Streamlit code, for `pages/`). At the top: `config` (where files
live, atomic writes), `io` (atomic torch.save), `system` (hardware), `plots` (shared figures).

Imports only point down: ui/cli -> runs -> train/models -> text -> data -> config/io (`tests/test_layout.py`).
"""
__version__ = "0.1.0"
