"""A reply on one line of the queue: cut to the column's cells with an ellipsis, whatever
its script (a CJK character or an emoji takes two cells)."""

from __future__ import annotations

from ftreview.tui.prompts import reply_line
from rich.cells import cell_len


def test_a_chinese_reply_is_cut_to_the_columns_cells_with_an_ellipsis() -> None:
    reply = "你的猫叫小饼干，它喜欢在窗台上晒太阳，每天下午都睡很久。"
    for width in (10, 11, 20, 38):
        line = reply_line(reply, width)
        assert line.endswith("…"), line
        assert cell_len(line) <= width and cell_len(line) >= width - 1, (width, line)


def test_a_short_or_latin_reply_is_kept_or_cut_at_the_same_width() -> None:
    assert reply_line("Your cat  is\nnamed Biscuit.", 40) == "Your cat is named Biscuit."
    assert reply_line("Your cat is named Biscuit.", 12) == "Your cat is…"
    mixed = reply_line("Café naïve 👩‍👩‍👧 and 小饼干 again and again", 16)
    assert mixed.endswith("…") and cell_len(mixed) <= 16
