"""A reply's fact words and recall: the fact must come back, not the reply's wording."""

from __future__ import annotations

from trainer_service.facts import TokenSpan, fact_words, recalls, words


def _tokens(reply: str, values: dict[str, float]) -> list[TokenSpan]:
    """One token per word of `reply`, with the divergence `values` gives it (else 0.1)."""
    out = []
    at = 0
    for word in reply.split():
        start = reply.index(word, at)
        at = start + len(word)
        out.append(TokenSpan(start, at, values.get(word.strip(".,"), 0.1)))
    return out


def test_the_fact_is_the_words_the_memory_made_likelier() -> None:
    reply = "Your cat is named Biscuit."
    assert fact_words(reply, _tokens(reply, {"Biscuit": 6.0, "named": 1.2})) == ("biscuit",)


def test_a_reworded_answer_with_the_fact_recalls_it_and_one_without_does_not() -> None:
    reply = "Your cat is named Biscuit."
    fact = fact_words(reply, _tokens(reply, {"Biscuit": 6.0}))
    assert recalls("Your cat is Biscuit!", fact)
    assert recalls("biscuit", fact)
    assert not recalls("Your cat is named Whiskers.", fact)
    assert not recalls("Your cat loves biscuits.", fact)  # another word, not the name


def test_several_strong_words_must_all_come_back() -> None:
    reply = "Your defense is on 14 May at 10:00 in room B12."
    fact = fact_words(reply, _tokens(reply, {"14": 5.0, "10:00": 4.0, "B12": 6.0, "May": 0.4}))
    assert fact == ("14", "10", "00", "b12")
    assert recalls("It is at 10:00 on 14 May, room B12.", fact)
    assert not recalls("It is on 14 May in room B12.", fact)


def test_a_token_inside_a_word_marks_the_whole_word() -> None:
    reply = "Your cat is named Biscuit."
    start = reply.index("Biscuit")
    tokens = [TokenSpan(start, start + 3, 7.0), TokenSpan(start + 3, start + 7, 0.2)]
    assert fact_words(reply, tokens) == ("biscuit",)


def test_no_strong_token_takes_the_strongest_word_and_none_positive_takes_nothing() -> None:
    reply = "It is blue."
    assert fact_words(reply, _tokens(reply, {"blue": 0.6})) == ("blue",)
    assert fact_words(reply, [TokenSpan(0, 2, -0.3)]) == ()
    assert recalls("anything at all", ())


def test_at_most_four_words_the_strongest_and_none_under_half_the_peak() -> None:
    reply = "a b c d e f"
    values = {"a": 3.5, "b": 4.0, "c": 4.5, "d": 5.0, "e": 6.0, "f": 2.9}
    assert fact_words(reply, _tokens(reply, values)) == ("b", "c", "d", "e")


def test_chinese_is_compared_character_by_character() -> None:
    assert words("你的猫叫饼干。") == ["你", "的", "猫", "叫", "饼", "干"]
    reply = "你的猫叫饼干。"
    tokens = [TokenSpan(4, 6, 5.0), TokenSpan(0, 4, 0.1)]
    fact = fact_words(reply, tokens)
    assert fact == ("饼", "干")
    assert recalls("它叫饼干", fact)
    assert not recalls("它叫咪咪", fact)


def test_words_are_compared_without_case_or_width() -> None:
    assert words("ＢＩＳＣＵＩＴ, Dr. Okafor's") == ["biscuit", "dr", "okafor", "s"]
