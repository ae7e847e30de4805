"""Background training runs: the SQLite run store (`store`), starting/cancelling/resuming worker processes
(`launcher`), the worker entry point (`worker`, `python -m ulmfit_demo.runs.worker <run_id>`), the fastai callback
that reports to the store (`callback`), and figures/tables the Train page draws from the store (`views`).

The page and the CLI only touch the store and the launcher; only the worker (and the CLI's foreground `train`)
imports fastai.
"""
