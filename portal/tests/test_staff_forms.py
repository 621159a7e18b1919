"""The one way a staff page saves a form: service called, refusal on the form, then PRG."""

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from portal.staff_forms import handle_staff_form


class NameForm(forms.Form):
    name = forms.CharField(max_length=20)
    note = forms.CharField(required=False)


class Refused(Exception):
    pass


def request_for(method: str, data: dict | None = None):
    request = getattr(RequestFactory(), method.lower())("/page/", data or {})
    request._messages = CookieStorage(request)
    return request


def shown(request) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(request)]


def posted(data: dict, **kwargs):
    request = request_for("POST", data)
    form = NameForm(request.POST)
    return request, form, handle_staff_form(request, form, **kwargs)


def test_a_get_draws_the_page_and_calls_nothing():
    request = request_for("GET")
    calls = []

    done = handle_staff_form(
        request, NameForm(), action=calls.append, redirect_to="/next/", success_message="Saved."
    )

    assert done is None
    assert calls == []
    assert shown(request) == []


def test_an_invalid_form_is_drawn_again_and_the_service_is_not_called():
    calls = []

    _request, form, done = posted({"name": ""}, action=calls.append, redirect_to="/next/")

    assert done is None
    assert calls == []
    assert "name" in form.errors


def test_a_valid_form_calls_the_service_says_so_and_redirects_by_its_result():
    request, _form, done = posted(
        {"name": "Ada"},
        action=lambda data: {"pk": 7, **data},
        success_message=lambda saved: f"{saved['name']} is saved.",
        redirect_to=lambda saved: f"/things/{saved['pk']}/",
    )

    assert done.status_code == 302
    assert done["Location"] == "/things/7/"
    assert shown(request) == [("success", "Ada is saved.")]


def test_no_success_message_adds_none():
    request, _form, done = posted({"name": "Ada"}, action=lambda data: None, redirect_to="/next/")

    assert done["Location"] == "/next/"
    assert shown(request) == []


def test_a_services_field_errors_land_on_the_fields_it_names_renamed_or_on_the_form():
    def refuse(data):
        raise ValidationError({"title": "Taken.", "note": "Too long.", "elsewhere": "Nope."})

    request, form, done = posted(
        {"name": "Ada"}, action=refuse, redirect_to="/next/", rename={"title": "name"}
    )

    assert done is None
    assert form.errors == {"name": ["Taken."], "note": ["Too long."], "__all__": ["Nope."]}
    assert shown(request) == []


@pytest.mark.parametrize(("error_field", "key"), [(None, "__all__"), ("name", "name")])
def test_a_refusal_without_a_field_lands_on_error_field(error_field, key):
    def refuse(data):
        raise ValidationError("Not now.")

    _, form, done = posted(
        {"name": "Ada"}, action=refuse, redirect_to="/next/", error_field=error_field
    )

    assert done is None
    assert form.errors == {key: ["Not now."]}


def test_a_services_own_refusal_is_shown_as_its_text():
    def refuse(data):
        raise Refused("The window has closed.")

    _, form, done = posted(
        {"name": "Ada"}, action=refuse, redirect_to="/next/", refusals=Refused, error_field="name"
    )

    assert done is None
    assert form.errors == {"name": ["The window has closed."]}


def test_an_error_that_is_not_a_refusal_is_not_swallowed():
    def broken(data):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        posted({"name": "Ada"}, action=broken, redirect_to="/next/")
