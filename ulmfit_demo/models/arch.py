"""The architecture of a fastai AWD-LSTM as JSON and back: `describe_model` reads a model's shapes and dropouts from
its modules, `build_model` makes an untrained model of exactly that shape for the weights to be loaded into.
"""
from typing import Any

from ulmfit_demo.models.registry import ModelError


def _jsonable(x: Any) -> Any:
    "Plain JSON values from configs that may hold tuples, numpy or torch scalars."
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, type(None))):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if hasattr(x, "item"):
        return x.item()
    return str(x)


def describe_model(model, kind: str) -> dict:
    """The architecture of a fastai AWD-LSTM model, read from its modules: everything `build_model` needs to make
    the same shapes again. Read from the model rather than trusted from the caller, so a learner built with
    defaults, or one that came out of an `export.pkl`, is described exactly."""
    from fastai.text.all import AWD_LSTM, LinearDecoder, PoolingLinearClassifier, SentenceEncoder, SigmoidRange
    from torch import nn

    if kind == "classifier":
        if not (len(model) == 2 and isinstance(model[0], SentenceEncoder) and isinstance(model[1], PoolingLinearClassifier)):
            raise ModelError("This is not a fastai text classifier (SentenceEncoder + PoolingLinearClassifier).")
        enc = model[0].module
    else:
        if not (len(model) == 2 and isinstance(model[1], LinearDecoder)):
            raise ModelError("This is not a fastai language model (encoder + LinearDecoder).")
        enc = model[0]
    if not isinstance(enc, AWD_LSTM):
        raise ModelError(f"Only AWD-LSTM models are supported (this one is {type(enc).__name__}).")
    cfg = dict(emb_sz=enc.emb_sz, n_hid=enc.n_hid, n_layers=enc.n_layers, pad_token=enc.pad_token,
               bidir=enc.n_dir == 2, hidden_p=enc.hidden_dps[0].p, input_p=enc.input_dp.p,
               embed_p=enc.encoder_dp.embed_p, weight_p=enc.rnns[0].weight_p)
    out = {"arch": "AWD_LSTM", "vocab_sz": enc.encoder.num_embeddings}
    if kind == "language_model":
        dec = model[1]
        cfg.update(output_p=dec.output_dp.p, tie_weights=dec.decoder.weight is enc.encoder.weight,
                   out_bias=dec.decoder.bias is not None)
    else:
        se, head = model[0], model[1]
        lins, ps, y_range = [], [], None
        for block in head.layers:
            if isinstance(block, SigmoidRange):
                y_range = [block.low, block.high]
                continue
            lins.append(next(m for m in block if isinstance(m, nn.Linear)).out_features)
            ps.append(next((m.p for m in block if isinstance(m, nn.Dropout)), 0.0))
        cfg["output_p"] = ps[0]
        out.update(n_class=lins[-1], seq_len=se.bptt, max_len=se.max_len, pad_idx=se.pad_idx,
                   lin_ftrs=lins[:-1], ps=ps[1:], y_range=y_range)
    out["config"] = cfg
    return _jsonable(out)


def build_model(desc: dict, kind: str):
    "An untrained fastai model with the architecture `describe_model` recorded (dropouts already scaled: drop_mult 1)."
    from fastai.text.all import AWD_LSTM, get_language_model, get_text_classifier

    cfg = dict(desc["config"])
    if kind == "language_model":
        return get_language_model(AWD_LSTM, desc["vocab_sz"], config=cfg, drop_mult=1.0)
    for k in ("tie_weights", "out_bias"):
        cfg.pop(k, None)
    y_range = tuple(desc["y_range"]) if desc.get("y_range") else None
    return get_text_classifier(AWD_LSTM, desc["vocab_sz"], desc["n_class"], seq_len=desc["seq_len"], config=cfg,
                               drop_mult=1.0, lin_ftrs=list(desc["lin_ftrs"]), ps=list(desc["ps"]),
                               pad_idx=desc["pad_idx"], max_len=desc["max_len"], y_range=y_range)
