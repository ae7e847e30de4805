"""AppTest: the Generate page with and without a language model; every widget: model, prompt, words, temperature,
samples, seed, "write different ones", sample and step of the next-word chart."""
from support import run_page


def run(**state):
    return run_page("pages/generate.py", **state)


def samples(at) -> list[str]:
    return [m.value for m in at.markdown if "Sample " in m.value and "seed" in m.value]


def test_without_a_language_model_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(tmp_path / "no-starter"))
    at = run()
    assert any("no trained language model" in i.value for i in at.info)
    assert not at.text_input and not at.slider


def test_fresh_machine_writes_with_the_starter_and_says_what_it_is():
    "An empty home: the shipped starter is picked, described from its card, and writes from the default prompt."
    import json

    from ulmfit_demo.models import starter

    card = json.loads((starter.folder() / "card.json").read_text())
    at = run()
    assert at.sidebar.selectbox(key="gen_model").value == "starter"
    intro = " ".join(m.value for m in at.markdown)
    assert "Starter language model" in intro and f"Perplexity {card['valid_perplexity']:,.1f}" in intro
    assert f"{card['arch']['n_hid']}" in intro and f"{card['tokens_seen'] / 1e6:,.1f}M tokens" in intro
    # what it read, in words ("IMDb reviews (… documents)"), not the corpus ids of the command line
    assert "IMDb reviews (" in intro and "`imdb`" not in intro and "yelp_sentences" not in intro
    out = samples(at)
    assert len(out) == 2 and all("<b><bdi>I liked this movie because</bdi></b>" in s for s in out)
    assert all(len(s.split("</b>")[1].split()) > 5 for s in out)  # it wrote words after the prompt
    assert "xxbos" not in " ".join(out) and "\u2581" not in " ".join(out)  # pieces joined into words
    assert at.get("plotly_chart") and any("drew word 1" in c.value for c in at.caption)


def test_a_trained_language_model_is_listed_beside_the_starter(ids):
    at = run()
    box = at.sidebar.selectbox(key="gen_model")
    assert box.value == ids["lm"]  # the user's own model first
    assert [o.split(" (")[0] for o in box.options] == ["tiny LM", "Starter language model"]
    box.set_value("starter").run()
    assert not at.exception
    assert "Starter language model" in " ".join(m.value for m in at.markdown)
    assert len(samples(at)) == 2


def test_writes_samples_shows_model_perplexity_and_next_word_chart(ids):
    at = run()
    assert at.sidebar.selectbox(key="gen_model").value == ids["lm"]
    intro = " ".join(m.value for m in at.markdown)
    from ulmfit_demo import models
    ppl = models.get(ids["lm"])["metrics"]["perplexity"]
    assert "tiny LM" in intro and f"Perplexity {ppl:,.1f}" in intro  # the number measured in training
    assert "trained on the demo reviews." in intro  # the corpus in words
    out = samples(at)
    assert len(out) == 2 and all("<b><bdi>I liked this movie because</bdi></b>" in s for s in out)
    assert at.get("plotly_chart")
    assert any("drew word 1" in c.value for c in at.caption)


def test_same_seed_same_text_new_seed_new_text(ids):
    at = run()
    first = samples(at)
    at.run()
    assert samples(at) == first
    at.button(key="gen_again").click().run()
    assert at.number_input(key="gen_seed").value == 2  # moved past the seeds already shown
    assert samples(at) != first
    at.number_input(key="gen_seed").set_value(0).run()
    assert samples(at) == first


def test_every_control_changes_the_output(ids):
    at = run()
    at.slider(key="gen_n_words").set_value(10).run()
    assert at.slider(key="gen_step").max == 10
    at.slider(key="gen_temperature").set_value(1.5).run()
    assert any("temperature 1.5" in c.value for c in at.caption)
    at.number_input(key="gen_n_samples").set_value(3).run()
    assert len(samples(at)) == 3
    at.selectbox(key="gen_sample").set_value(2).run()
    at.slider(key="gen_step").set_value(4).run()
    assert not at.exception
    assert any("drew word 4" in c.value for c in at.caption)
    at.text_input(key="gen_prompt").set_value("<i>html</i> The plot").run()
    assert not at.exception
    assert all("&lt;i&gt;html&lt;/i&gt; The plot" in s for s in samples(at))
    at.text_input(key="gen_prompt").set_value("").run()  # an empty prompt writes from scratch
    assert not at.exception and len(samples(at)) == 3


def test_damaged_language_model_shows_a_message(ids, home):
    w = home / "models" / ids["lm"] / "weights.safetensors"
    w.write_bytes(b"garbage")
    at = run()
    assert any("truncated" in e.value or "damaged" in e.value for e in at.error)
