"""The Streamlit layer: every module of `ulmfit_demo` that imports streamlit lives here, and only pages (`pages/`,
`app.py`) import it. Nothing else in the package imports this folder, so the worker, the CLI and the tests of the
logic never load Streamlit (`tests/test_layout.py` checks it).

- `common`: what every page uses: page set-up, token chips, the corpus picker and cached corpus loading.
- `model_widgets`: the model picker, verdicts, attributions and their charts (Sentiment, Generate, Models pages).

This file imports nothing, so `ulmfit_demo.ui.model_widgets` does not pull in `common` or the other way round.
"""
