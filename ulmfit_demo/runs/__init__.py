"""Background training runs: the SQLite run store (`store`), starting/cancelling/resuming worker processes
(`launcher`), the worker entry point (`worker`, `python -m ulmfit_demo.runs.worker <run_id>`) and the run's work
it executes (`job`: what every run kind shares, wired to the store; one `*_stage` module per run kind beside it:
`lm_stage`, `clas_stage`, `lr_find_stage`, `baseline_stage`, `ensemble_stage`, `curve_stage`), the fastai callback
that reports to the store (`callback`), checkpoints (`checkpoint`), and figures/tables the Train page draws from the
store (`views`).

The pages and the CLI use the store, the launcher and the orchestrations built on them (`recipe`, `curve`) and
read figures through `views`; only the worker (and the CLI's foreground `train`) imports fastai.
"""
