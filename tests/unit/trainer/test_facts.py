"""A reply's fact words and recall: the fact must come back, not the reply's wording."""

from __future__ import annotations

from trainer_service.facts import TokenSpan, fact_words, recalls, supplied, words


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
    assert fact_words(reply, _tokens(reply, {"Biscuit": 6.0, "named": 1.2})) == ("Biscuit",)


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
    assert fact == ("14", "10:00", "B12")  # as the reply writes them
    assert recalls("It is at 10:00 on 14 May, room B12.", fact)
    assert not recalls("It is on 14 May in room B12.", fact)
    assert not recalls("It is at 10:30 on 14 May, room B12.", fact)


def test_a_number_the_memories_supplied_is_part_of_the_fact_however_weakly_it_rose() -> None:
    reply = "Your blood test is on 9 July with nurse Adaeze, room 4."
    memory = "Memory: the user's blood test is on 9 July at 08:15 with nurse Adaeze."
    asked = "When is my blood test? I'm in room 4."
    brought = supplied([memory, asked], [asked])
    assert {"9", "july", "adaeze"} <= brought and "4" not in brought
    # "9" rose less than the name and is not among the ranked words...
    values = {"Adaeze": 6.0, "July": 3.5, "9": 0.4, "4": 0.2}
    assert fact_words(reply, _tokens(reply, values)) == ("July", "Adaeze")
    # ...but the memories supplied it, so it must come back; "4" came from the question.
    fact = fact_words(reply, _tokens(reply, values), brought)
    assert fact == ("9", "July", "Adaeze")
    assert not recalls("It is on 8 July with nurse Adaeze.", fact)
    assert recalls("On 9 July, with Adaeze.", fact)


def test_a_number_an_earlier_turn_also_said_is_still_the_memories() -> None:
    earlier = "You are staying at Casa do Vimeiro, in room 514."
    memory = "Memory: the user's room at the Lisbon hotel is number 514."
    # Asked cold, the earlier turn is not there: the number is the memory's to supply.
    assert "514" in supplied([earlier, memory], [earlier])
    assert "staying" not in supplied([earlier, memory], [earlier])


def test_a_number_is_one_word_however_it_is_grouped_or_padded() -> None:
    assert words("07:25, £1,185, 10,000,000, 3,5 l, 0") == [
        "7",
        "25",
        "1185",
        "10000000",
        "3",
        "5",
        "l",
        "0",
    ]
    reply = "The bill is £1,185, due at 07:25."
    fact = fact_words(reply, _tokens(reply, {"£1,185": 5.0, "07:25": 4.0}))
    assert fact == ("1,185", "07:25")
    assert recalls("It is 1185 pounds, at 7:25", fact)
    assert not recalls("It is 1,158 pounds, at 7:25", fact)


def test_a_fact_stored_with_numbers_as_written_still_comes_back() -> None:
    # Fact words a trainer stored before numbers compared as numbers ("07", "1", "185").
    assert recalls("It is £1,185, due at 07:25.", ("1", "185", "07", "25"))
    assert recalls("It is £1,185, due at 07:25.", ("1185", "7", "25"))
    assert not recalls("It is £1,158, due at 07:25.", ("1", "185", "07", "25"))


def test_a_token_inside_a_word_marks_the_whole_word() -> None:
    reply = "Your cat is named Biscuit."
    start = reply.index("Biscuit")
    tokens = [TokenSpan(start, start + 3, 7.0), TokenSpan(start + 3, start + 7, 0.2)]
    assert fact_words(reply, tokens) == ("Biscuit",)


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
    assert fact == ("饼干",)  # read as written; compared character by character
    assert recalls("它叫饼干", fact)
    assert recalls("饼呢？干", fact)
    assert not recalls("它叫咪咪", fact)
    assert not recalls("它叫饼饼", fact)


def test_words_are_compared_without_case_or_width() -> None:
    assert words("ＢＩＳＣＵＩＴ, Dr. Okafor's") == ["biscuit", "dr", "okafor", "s"]
