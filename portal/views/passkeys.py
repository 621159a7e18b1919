"""Staff passkeys: added from the account page, used at sign-in as the second factor.

The browser side is django-otp-webauthn's own script, served from static (the pages'
policy allows no inline script). These are its four endpoints, narrowed to bankside's
rules: a passkey is added only by a signed-in staff member whose session passed its second
factor, and used only to finish a sign-in whose password was right and that waits for its
second factor. There is no passwordless sign-in.
"""

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from portal import selectors, services
from portal.access import public, staff_account
from portal.forms import PasskeyNameForm
from portal.views.auth import finish_login, pending_sign_in

logger = logging.getLogger("portal.passkeys")


class PasskeysUnavailable(webauthn_errors.OTPWebAuthnApiError):  # type: ignore[misc]  # untyped library
    status_code = 404
    default_detail = "Passkeys are not available on this address: it must be https."
    default_code = "passkeys_unavailable"


class _RequestData:
    request: HttpRequest

    def request_data(self) -> Any:
        """The JSON body the library's dispatch parsed into `request.data`."""
        return getattr(self.request, "data", None)


class _StaffRegistration(_RequestData):
    """Registration for the signed-in staff member, only once this session passed its
    second factor (an authenticator code, a recovery code or another passkey)."""

    messages = {
        "user_not_verified": "Sign in with your authenticator app first, then add a passkey."
    }

    def user_is_mfa_enrolled(self, user: Any) -> bool:
        return True  # so the library always demands a verified session

    def check_can_register(self) -> None:
        if not settings.PASSKEYS_ENABLED:
            raise PasskeysUnavailable()


class PasskeyRegistrationBeginView(_StaffRegistration, BeginCredentialRegistrationView):  # type: ignore[misc]  # untyped library
    pass


class PasskeyRegistrationCompleteView(_StaffRegistration, CompleteCredentialRegistrationView):  # type: ignore[misc]  # untyped library
    def post(self, *args: Any, **kwargs: Any) -> JsonResponse:
        user = self.get_user()
        state = self.get_state()
        with rewrite_exceptions(logger=logger):
            credential = services.passkey_register(
                user=user, helper=self.get_helper(), state=state, data=self.request_data()
            )
        return JsonResponse({"id": credential.pk})


class _PendingSignIn(_RequestData):
    """Authentication for the sign-in waiting for its second factor in this session."""

    def get_user(self) -> Any:
        pending = pending_sign_in(self.request)
        return pending[0] if pending is not None else None

    def check_can_authenticate(self) -> None:
        if not settings.PASSKEYS_ENABLED:
            raise PasskeysUnavailable()
        if self.get_user() is None:
            raise webauthn_errors.NotAuthenticated(
                detail="Your sign-in timed out. Start again with your username and password."
            )


class PasskeySignInBeginView(_PendingSignIn, BeginCredentialAuthenticationView):  # type: ignore[misc]  # untyped library
    pass


class PasskeySignInCompleteView(_PendingSignIn, CompleteCredentialAuthenticationView):  # type: ignore[misc]  # untyped library
    def post(self, *args: Any, **kwargs: Any) -> JsonResponse:
        pending = pending_sign_in(self.request)
        if pending is None:
            raise webauthn_errors.NotAuthenticated()
        user, backend, next_url = pending
        state = self.get_state()
        try:
            with rewrite_exceptions(logger=logger):
                credential = self.get_helper().authenticate_complete(
                    user=user, state=state, data=self.request_data()
                )
            self.check_device_usable(credential)
        except webauthn_errors.OTPWebAuthnApiError as exc:
            logger.warning("Passkey sign-in refused for staff user %s: %s", user.pk, exc.code)
            raise
        finish_login(self.request, user, backend=backend, next_url=next_url, device=credential)
        return JsonResponse({"id": credential.pk, "redirect_url": next_url})


# The access wrappers are untyped (mypy baseline); the views they wrap are typed.
passkey_register_begin = staff_account(  # type: ignore[no-untyped-call]
    require_POST(PasskeyRegistrationBeginView.as_view()),
)
passkey_register_complete = staff_account(  # type: ignore[no-untyped-call]
    require_POST(PasskeyRegistrationCompleteView.as_view()),
)
passkey_sign_in_begin = public(  # type: ignore[no-untyped-call]
    require_POST(csrf_protect(PasskeySignInBeginView.as_view())),
)
passkey_sign_in_complete = public(  # type: ignore[no-untyped-call]
    require_POST(csrf_protect(PasskeySignInCompleteView.as_view())),
)
# The words of the library's script (its `gettext`), from its own message catalog.
passkey_script_words = public(  # type: ignore[no-untyped-call]
    JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
)


@staff_account  # type: ignore[untyped-decorator]
@require_http_methods(["GET", "POST"])
def passkey_name(request: HttpRequest, passkey: int) -> HttpResponse:
    """Name one of one's own passkeys: right after adding it, or later."""
    user: Any = request.user
    credential = selectors.passkey_list(user=user).filter(pk=passkey).first()
    if credential is None:
        raise Http404("No such passkey.")
    form = PasskeyNameForm(request.POST or None, initial={"name": credential.name})
    if request.method == "POST" and form.is_valid():
        try:
            named = services.passkey_rename(
                user=user, passkey_id=credential.pk, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, f"Your passkey “{named.name}” is ready to use.")
            return redirect("portal:account")
    return render(request, "portal/auth/passkey_name.html", {"form": form, "passkey": credential})


@staff_account  # type: ignore[untyped-decorator]
@require_POST
def passkey_remove(request: HttpRequest, passkey: int) -> HttpResponse:
    user: Any = request.user
    try:
        name = services.passkey_remove(user=user, passkey_id=passkey)
    except WebAuthnCredential.DoesNotExist:
        raise Http404("No such passkey.") from None
    except services.LastSecondFactorError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Passkey “{name}” removed: it can no longer sign you in.")
    return redirect("portal:account")
