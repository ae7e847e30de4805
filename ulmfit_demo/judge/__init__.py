"""Judging a model as an ML engineer would: beside a linear baseline (`baseline`), on the app's own out-of-domain
sentences (`ood`), and with temperature-scaled probabilities and their calibration error (`calibration`).

Submodules are imported on use (`from ulmfit_demo.judge import baseline`) so that importing the package stays cheap."""
