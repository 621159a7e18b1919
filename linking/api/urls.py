from django.urls import path, register_converter

from linking.api.invitations import LinkInvitationCreateApi
from linking.api.views import CustomerUpsertApi

app_name = "linking-api"


class AnyText:
    """Any text, slashes and line breaks included (Django's `path` stops at a line break):
    every customer id reaches the view, which refuses a bad one as a 400 naming it."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyText, "anytext")

urlpatterns = [
    # Not `str`: an id with a slash or a line break in it is refused by the view, as a 400
    # problem naming `customer_id`, rather than found nowhere. A route under a customer
    # (`customers/<id>/…`) must come before this one.
    path(
        "customers/<anytext:customer_id>/link-invitations",
        LinkInvitationCreateApi.as_view(),
        name="link-invitation-create",
    ),
    path("customers/<anytext:customer_id>", CustomerUpsertApi.as_view(), name="customer-upsert"),
]
