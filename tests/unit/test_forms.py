"""Numbers typed into the pages' forms: what becomes a number, and what is handed to validation as text."""

from __future__ import annotations

import pytest

from dcp.web.forms import whole_number


@pytest.mark.parametrize(("typed", "read"), [(" 42 ", 42), ("-5", -5), ("٥٠", 50), ("۵", 5), ("", None)])
def test_digits_people_type_are_numbers(typed, read):
    assert whole_number(typed) == read


@pytest.mark.parametrize("typed", ["--5", "²", "5²", "9" * 5_000, "1e3", "5.0"])
def test_anything_else_is_text_for_validation_to_name(typed):
    # "--5", "²" and 5,000 digits passed the old isdigit() check and int() refused them: a 500 on the page.
    assert whole_number(typed) == typed
