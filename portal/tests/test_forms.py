"""The date range every filtered list page shares (audit log, linked accounts, dead letters)."""

import datetime as dt

import pytest
from django import forms

from portal.forms import DateRangeForm


class PageFilterForm(DateRangeForm):
    who = forms.CharField(required=False)
    date_from_label = "Sent from (UTC)"


def test_both_dates_are_optional():
    form = DateRangeForm({})

    assert form.is_valid()
    assert form.filters() == {}


def test_a_range_of_one_day_is_valid_and_keeps_its_query_names():
    form = DateRangeForm({"date_from": "2026-03-02", "date_to": "2026-03-02"})

    assert form.is_valid()
    assert form.filters() == {"date_from": dt.date(2026, 3, 2), "date_to": dt.date(2026, 3, 2)}


def test_an_end_before_the_start_is_refused_on_the_end_date():
    form = DateRangeForm({"date_from": "2026-03-03", "date_to": "2026-03-01"})

    assert not form.is_valid()
    assert form.errors == {"date_to": ["The end date must not be before the start date."]}


@pytest.mark.parametrize(
    ("field", "value"),
    [("date_to", "9999-12-31"), ("date_from", "0001-01-01"), ("date_from", "1999-12-31")],
)
def test_a_day_no_one_could_mean_is_refused(field, value):
    form = DateRangeForm({field: value})

    assert not form.is_valid()
    assert form.errors == {field: ["Give a date from 2000 to 2099."]}


def test_a_page_adds_its_filters_before_the_range_and_names_its_dates():
    form = PageFilterForm({"who": "ada", "date_from": "2026-01-01"})

    assert list(form.fields) == ["who", "date_from", "date_to"]
    assert form.fields["date_from"].label == "Sent from (UTC)"
    assert form.fields["date_to"].label == "To (UTC)"
    assert form.is_valid()
    assert form.filters() == {"who": "ada", "date_from": dt.date(2026, 1, 1)}
