"""Text from a language model: seeded samples continuing a prompt, with the next-word distribution each word was
drawn from (`generate`), and the model's measured perplexity (`perplexity`).
"""
import math

from ulmfit_demo.models.runners import MAX_CHARS, InferenceError, _need, numericalize, runner, tokenize
from ulmfit_demo.text.decode import detokenize

TOP_K = 10


def generate(model, prompt: str, n_words: int = 40, temperature: float = 0.75, n_samples: int = 1,
             seed: int = 0, top_k: int = TOP_K) -> dict:
    """Sample continuations of `prompt` from a language model. Each sample `i` draws from its own generator seeded
    `seed + i`, so the same seed gives the same text. Like fastai's `LMLearner.predict`: `xxunk` is never drawn and
    probabilities are raised to `1/temperature`. Returns `{"texts", "samples": [{"text", "tokens", "steps"}]}`
    where `steps[k]` is the top-k next-word distribution the k-th word was drawn from."""
    import torch

    r = runner(model)
    _need(r, "language_model")
    if r.backwards:
        raise InferenceError(f"{r.meta['name']!r} was trained on reversed text (backwards): it predicts the word "
                             f"before, not the next one, so it cannot continue a prompt. Pick a forward model.")
    if not isinstance(prompt, str):
        raise InferenceError("The prompt must be text.")
    if not 1 <= int(n_words) <= 1000:
        raise InferenceError(f"Number of words must be between 1 and 1000 (got {n_words}).")
    if not 1 <= int(n_samples) <= 20:
        raise InferenceError(f"Number of samples must be between 1 and 20 (got {n_samples}).")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise InferenceError(f"Temperature must be above 0 (got {temperature}); 1 samples as trained, lower is "
                             f"safer, higher is wilder.")
    prompt = prompt[:MAX_CHARS]
    n_words, n_samples = int(n_words), int(n_samples)
    vocab = r.loaded.vocab
    banned = [i for i in (r.idx("xxunk", -1), r.idx("xxpad", -1)) if i >= 0]
    with r.lock:
        toks = tokenize(r, [prompt])[0] if prompt.strip() else ["xxbos"]
        ids = numericalize(r, toks)
        gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(n_samples)]
        model = r.loaded.model
        out_ids = [[] for _ in range(n_samples)]
        steps = [[] for _ in range(n_samples)]
        with torch.no_grad():
            model.reset()
            x = torch.tensor([ids] * n_samples, dtype=torch.long)
            for _ in range(n_words):
                logits = model(x)[0][:, -1].float()
                logits[:, banned] = -math.inf
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = []
                for s in range(n_samples):
                    j = int(torch.multinomial(probs[s], 1, generator=gens[s]))
                    top_p, top_i = probs[s].topk(min(top_k, probs.shape[1]))
                    steps[s].append({"chosen": vocab[j], "chosen_prob": float(probs[s, j]),
                                     "top": [(vocab[int(i)], float(p)) for p, i in zip(top_p, top_i)]})
                    out_ids[s].append(j)
                    nxt.append(j)
                x = torch.tensor(nxt, dtype=torch.long)[:, None]
        model.reset()
    samples = []
    for s in range(n_samples):
        gen_toks = [vocab[i] for i in out_ids[s]]
        samples.append({"text": detokenize(toks + gen_toks, r.subword), "tokens": gen_toks, "steps": steps[s]})
    # `subword`: the tokens are SentencePiece pieces ('\u2581' starts a word), so a caller joining them says so.
    return {"texts": [s["text"] for s in samples], "samples": samples, "prompt_tokens": toks, "subword": r.subword}


def perplexity(model) -> float | None:
    "The LM's validation perplexity as measured at the end of training, if the model recorded one."
    r = model if isinstance(model, dict) else runner(model).meta
    m = r.get("metrics") or {}
    if "perplexity" in m:
        return float(m["perplexity"])
    if "valid_loss" in m:
        return float(math.exp(m["valid_loss"]))
    return None
