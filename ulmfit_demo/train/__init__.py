"""Training: the ULMFiT stages as plain functions over fastai Learners, and what they start from.

- `presets`: the run config (`Config`) and the presets (ULMFiT, Quick, ...), data shown in the UI and the CLI.
- `tokens`: a run's tokenizer (word or SentencePiece) and its documents tokenized once.
- `stages`: DataLoaders, learners, the one-cycle phases with gradual unfreezing, LM samples, the LR finder.
- `pretrained`: fastai's WikiText-103 weights, found like corpora (cache, mirror, download).
- `starter_build`: building the starter language models (stage 1 on the mirror's text, in resumable sittings);
  finding and loading the shipped ones is `models.starter`'s job.
- `start`: where a run's language model starts (`pretrained="auto"`); `precision`: bf16 on a CPU;
  `evaluate`: a trained classifier judged on the app's predict path; `bundled`: the bundled sentiment model.

Nothing here imports `ulmfit_demo.runs`: the run machinery calls the stages, never the other way round
(`tests/test_layout.py` checks it). This file imports nothing, so `presets` stays light for pages.
"""
