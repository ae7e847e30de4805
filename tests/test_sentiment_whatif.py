"""AppTest: the Sentiment page's What-if box follows the review in the box. After a second review, the word it
offers, the edit preview and the confidence move all come from the second review, never from the first (#21)."""
import html

from support import run_page

FIRST = "What a wonderful film! The acting is superb and I left the cinema smiling."
SECOND = "The headphones stopped working after a week. Very disappointed."


def whatif_words(at):
    box = at.selectbox(key="sent_whatif_word")
    return box, [o.rsplit("  (word ", 1)[0] for o in box.options]


def preview(at) -> str:
    return " ".join(m.value for m in at.markdown if "border-left:3px" in m.value)


def test_what_if_follows_the_current_review(bundled):
    at = run_page("pages/sentiment.py", sent_text=FIRST)
    box, words = whatif_words(at)
    assert "wonderful" in " ".join(words)
    # pick a word of the first review and type a replacement, as a presenter would
    box.set_value(words.index("wonderful")).run()
    at.text_input(key="sent_whatif_new").set_value("awful").run()
    assert "awful" in preview(at)
    at.text_area(key="sent_text").set_value(SECOND).run()
    assert not at.exception
    box, words = whatif_words(at)
    assert words == [w for w in words if w in SECOND]  # every offered word is a word of the second review
    chosen = words[box.value]
    assert chosen in SECOND and "wonderful" not in box.options[box.value]
    # the replacement typed for the first review is gone, and the preview is the second review minus that word
    assert at.text_input(key="sent_whatif_new").value == ""
    shown = preview(at)
    assert "stopped" in shown or "headphones" in shown
    assert "wonderful" not in shown and "awful" not in shown
    assert f'leaving out "<bdi>{html.escape(chosen)}</bdi>"' in shown


def test_what_if_keeps_the_choice_while_the_review_stays(bundled):
    at = run_page("pages/sentiment.py", sent_text=SECOND)
    box, words = whatif_words(at)
    k = words.index("week.") if "week." in words else len(words) - 1
    box.set_value(k).run()
    at.button(key="sent_go").click().run()  # judging the same text again keeps the chosen word
    assert at.selectbox(key="sent_whatif_word").value == k


def test_the_example_box_lets_go_of_an_example_once_the_text_is_edited(bundled):
    at = run_page("pages/sentiment.py")
    at.selectbox(key="sent_example").set_value("A clear flop").run()
    assert at.text_area(key="sent_text").value.startswith("A dull")
    at.text_area(key="sent_text").set_value(SECOND).run()
    assert at.selectbox(key="sent_example").value == "(choose one)"
    box, words = whatif_words(at)
    assert all(w in SECOND for w in words)
