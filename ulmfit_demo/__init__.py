"""ULMFiT Studio: the ULMFiT transfer-learning workflow (fastai, AWD-LSTM) as importable, testable functions."""
__version__ = "0.1.0"
