"""The Streamlit layer: every module of `ulmfit_demo` that imports streamlit lives here, and only pages (`pages/`,
`app.py`) import it. Nothing else in the package imports this folder, so the worker, the CLI and the tests of the
logic never load Streamlit (`tests/test_layout.py` checks it).

- `common`: what every page uses: page set-up, token chips, the corpus picker and cached corpus loading.
- `model_widgets`: the model picker, verdicts, attributions and their charts (Sentiment, Generate, Models pages).
- `tokenizers`: how the Tokenizers page draws tokens (chips, diffs, SentencePiece pieces, special-token notes).
- `train_knobs`, `train_form`, `train_live`, `train_recipe`, `train_runs`: the Train page's Custom knobs, its
  new-run form, one run live, the recipe table and the runs list.
- `curve`: the label-efficiency curve's form (Train page) and chart (Models page).

This file imports nothing, so `ulmfit_demo.ui.model_widgets` does not pull in `common` or the other way round.
"""
