"""A fresh machine (empty home), as a presenter meets it (#21): the CLI generates with the shipped starter, Home counts
the models that already work, and the Tokenizers page says where a subword limit
comes from."""
import json
import os
import subprocess
import sys

from support import REPO, run_page


def test_generate_with_the_starter_on_an_empty_home(home):
    env = dict(os.environ, ULMFIT_DEMO_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "ulmfit_demo", "generate", "--model", "starter", "--prompt",
                          "I liked this movie because", "--json"], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    text = json.loads(out.stdout)["texts"][0]
    assert text.startswith("I liked this movie because ") and len(text.split()) > 10
    assert "xxbos" not in text and "\u2581" not in text
    assert not any((home / "models").glob("lm-*"))  # the starter is used in place, never copied into the home


def test_home_counts_the_shipped_models_that_already_work(bundled):
    at = run_page("app.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models ready"] == "2"
    caption = " ".join(c.value for c in at.caption)
    assert "0 trained here, 2 shipped with the app" in caption and "Starter language model" in caption


def test_subword_limit_names_the_corpus_not_the_typed_text():
    at = run_page("pages/tokenizers.py", tok_sizes="100000")
    at.text_input(key="tok_sizes").input("10000").run()
    assert not at.exception
    warns = [w.value for w in at.warning if "You asked for 10,000" in w.value]
    assert warns, [w.value for w in at.warning]
    assert "SentencePiece learns from" in warns[0] and "reviews of **demo**" in warns[0]
    assert "not from the text above" in warns[0]
