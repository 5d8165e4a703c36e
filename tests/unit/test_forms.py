"""Numbers typed into the pages' forms: what becomes a number, and what is handed to validation as text."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from dcp.jobs.params import LlmParams
from dcp.kit.fields import Name
from dcp.web.forms import field_errors, in_latin_digits, whole_number
from dcp.web.i18n import Locale

ARABIC_50, PERSIAN_5 = "\u0665\u0660", "\u06f5"  # as people type them on Arabic and Persian keyboards
ARABIC_0_7, ARABIC_1_5 = "\u0660\u066b\u0667", "\u0661.\u0665"  # with the Arabic decimal separator, and a dot
SQUARED = "\u00b2"  # a digit to str.isdigit(), not to int()


@pytest.mark.parametrize(
    ("typed", "read"), [(" 42 ", 42), ("-5", -5), (ARABIC_50, 50), (PERSIAN_5, 5), ("", None)]
)
def test_digits_people_type_are_numbers(typed, read):
    assert whole_number(typed) == read


@pytest.mark.parametrize("typed", ["--5", SQUARED, f"5{SQUARED}", "9" * 5_000, "1e3", "5.0"])
def test_anything_else_is_text_for_validation_to_name(typed):
    # "--5", a squared sign and 5,000 digits passed the old isdigit() check and int() refused them: a 500.
    assert whole_number(typed) == typed


@pytest.mark.parametrize(
    ("typed", "read"), [("0.7", "0.7"), (ARABIC_0_7, "0.7"), (f" {ARABIC_1_5} ", "1.5"), ("abc", "abc")]
)
def test_a_fraction_in_arabic_indic_digits_reads_as_one(typed, read):
    assert in_latin_digits(typed) == read


def test_a_field_that_takes_a_fraction_does_not_ask_for_a_whole_number():
    with pytest.raises(ValidationError) as refused:
        LlmParams.model_validate({"prompt": "hi", "temperature": "warm"})
    assert field_errors(refused.value, Locale("en", "Asia/Riyadh")) == {"temperature": "Enter a number."}


def test_a_name_past_its_length_is_too_long_not_invalid():
    class Form(BaseModel):
        name: Name

    with pytest.raises(ValidationError) as refused:
        Form.model_validate({"name": "x" * 300})
    assert field_errors(refused.value, Locale("en", "Asia/Riyadh")) == {
        "name": "Too long: at most 100 characters."
    }
