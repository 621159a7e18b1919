"""Staff sign-in: password, then a TOTP code (or enrolment) for those who need one.

Until the second factor passes, the session holds only a short-lived "pending" marker:
the user is not logged in, so nothing that checks `is_authenticated` can be reached
with the password alone.
"""

import time
from base64 import b32encode
from typing import Any

import django_otp
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from portal import selectors, services
from portal.access import activity_mark, public, staff_account
from portal.audit import Actor
from portal.forms import (
    InvitationAcceptForm,
    OneTimeCodeForm,
    RecoveryCodeForm,
    StaffLoginForm,
    apply_errors,
)
from portal.models import StaffRecoveryDevice, StaffTOTPDevice
from portal.views._shared import reveal_once, take_reveal

PENDING_KEY = "portal.pending_login"
AFTER_CODES_KEY = "portal.after_recovery_codes"
PENDING_SECONDS = 10 * 60
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
WRONG_CODE = (
    "That code is not right. Enter the newest code; if it keeps failing, check that your "
    "phone's clock is set automatically."
)
THROTTLED = "Too many wrong codes in a row. Wait a few seconds, then enter the newest code."


def webauthn_config(request: HttpRequest) -> dict[str, Any]:
    """What django-otp-webauthn's script reads from the page (`otp_webauthn_config`)."""
    return {
        "autocompleteLoginFieldSelector": None,
        "nextFieldSelector": "input[name='next']",
        "csrfToken": get_token(request),
        "beginAuthenticationUrl": reverse("portal:passkey_sign_in_begin"),
        "completeAuthenticationUrl": reverse("portal:passkey_sign_in_complete"),
        "beginRegistrationUrl": reverse("portal:passkey_register_begin"),
        "completeRegistrationUrl": reverse("portal:passkey_register_complete"),
    }


def lockout_response(request, original_response=None, credentials=None):
    """django-axes calls this when a username and address pair is locked out."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "portal/auth/locked_out.html",
        {"minutes": minutes, "failures": settings.AXES_FAILURE_LIMIT},
        status=429,
    )


@public
@sensitive_post_parameters("password")
@csrf_protect
@require_http_methods(["GET", "POST"])
def login(request):
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        if _fully_signed_in(request.user):
            return redirect(next_url)
        auth_logout(request)  # e.g. signed in before their role required a second factor
    form = StaffLoginForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        if not selectors.staff_has_access(user):
            form.add_error(None, "This account has no access to any bank.")
        elif django_otp.user_has_device(user, confirmed=True):
            _start_pending(request, user, next_url)
            return redirect("portal:login_verify")
        elif selectors.two_factor_required(user):
            _start_pending(request, user, next_url)
            messages.info(request, "Your role needs two-factor sign-in. Set it up now.")
            return redirect("portal:two_factor_setup")
        else:
            return finish_login(request, user, backend=user.backend, next_url=next_url)
    return render(request, "portal/auth/login.html", {"form": form, "next": next_url})


@public
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_verify(request):
    pending = pending_sign_in(request)
    if pending is None:
        messages.info(request, "Your sign-in timed out. Sign in again.")
        return redirect("portal:login")
    user, backend, next_url = pending
    devices = list(StaffTOTPDevice.objects.devices_for_user(user, confirmed=True))
    has_passkey = selectors.passkey_list(user=user).filter(confirmed=True).exists()
    if not devices and not has_passkey:
        return redirect("portal:two_factor_setup")
    form = OneTimeCodeForm(request.POST or None)
    if request.method == "POST" and devices and form.is_valid():
        code = form.cleaned_data["code"]
        throttled = not any(device.verify_is_allowed()[0] for device in devices)
        for device in [] if throttled else devices:
            verified = django_otp.verify_token(user, device.persistent_id, code)
            if verified is not None:
                return finish_login(
                    request, user, backend=backend, next_url=next_url, device=verified
                )
        form.add_error("code", THROTTLED if throttled else WRONG_CODE)
    return render(
        request,
        "portal/auth/verify.html",
        {
            "form": form,
            "username": user.get_username(),
            "has_totp": bool(devices),
            "passkeys": has_passkey and settings.PASSKEYS_ENABLED,
            "webauthn_config": webauthn_config(request),
            "next": next_url,
        },
    )


@public
@csrf_protect
@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    """Enrol an authenticator app: during sign-in (pending) or later, from the account page."""
    pending = pending_sign_in(request)
    if pending is not None:
        user, backend, next_url = pending
        if django_otp.user_has_device(user, confirmed=True):
            return redirect("portal:login_verify")
    elif request.user.is_authenticated and selectors.staff_has_access(request.user):
        user, backend, next_url = request.user, None, reverse("portal:account")
        if django_otp.user_has_device(user, confirmed=True):
            messages.info(request, "Two-factor sign-in is already set up for your account.")
            return redirect("portal:account")
    else:
        return redirect("portal:login")

    device = services.two_factor_device_start(user=user)
    form = OneTimeCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        throttled = not device.verify_is_allowed()[0]
        if not throttled and services.two_factor_device_confirm(
            user=user, device=device, code=code
        ):
            device.refresh_from_db()
            messages.success(request, "Two-factor sign-in is set up.")
            if pending is not None:
                backend = backend or MODEL_BACKEND  # a pending sign-in always names one
                finish_login(request, user, backend=backend, next_url=next_url, device=device)
            else:
                django_otp.login(request, device)
            return _show_recovery_codes(request, user, next_url=next_url)
        device.refresh_from_db()
        form.add_error("code", THROTTLED if throttled else WRONG_CODE)
    secret = b32encode(device.bin_key).decode("ascii")
    qr_svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5,
        border=2,
        dark="#1b2430",
        light="#ffffff",
        title="QR code for your authenticator app",
    )
    return render(
        request,
        "portal/auth/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": qr_svg,
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
            "username": user.get_username(),
            "issuer": settings.OTP_TOTP_ISSUER,
            "during_sign_in": pending is not None,
        },
    )


@public  # type: ignore[untyped-decorator]
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_recovery(request: HttpRequest) -> HttpResponse:
    """The second factor from a recovery code, for someone whose authenticator is lost."""
    pending = pending_sign_in(request)
    if pending is None:
        messages.info(request, "Your sign-in timed out. Sign in again.")
        return redirect("portal:login")
    user, backend, next_url = pending
    form = RecoveryCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        kept = StaffRecoveryDevice.objects.filter(user=user).order_by("pk").first()
        if kept is not None and not kept.verify_is_allowed()[0]:
            form.add_error(
                "code", "Too many wrong codes in a row. Wait a few seconds, then try again."
            )
            return render(
                request,
                "portal/auth/recovery.html",
                {"form": form, "username": user.get_username()},
            )
        device = services.recovery_code_sign_in(user=user, code=form.cleaned_data["code"])
        if device is not None:
            remaining = services.recovery_codes_remaining(user=user) or 0
            messages.warning(
                request,
                f"You signed in with a recovery code; it cannot be used again. "
                f"{remaining} recovery code{'s' if remaining != 1 else ''} left: set up your "
                "authenticator again or generate new codes on your account page.",
            )
            return finish_login(request, user, backend=backend, next_url=next_url, device=device)
        form.add_error(
            "code",
            "That recovery code is not right, or it was used already. Check it and try again.",
        )
    return render(
        request, "portal/auth/recovery.html", {"form": form, "username": user.get_username()}
    )


@staff_account  # type: ignore[untyped-decorator]
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (POST, audited), or the ones just made, shown this once (GET)."""
    if request.method == "POST":
        return _show_recovery_codes(request, request.user, next_url=reverse("portal:account"))
    reveal = take_reveal(request)
    next_url = request.session.pop(AFTER_CODES_KEY, None) or reverse("portal:account")
    if reveal is None:
        return redirect("portal:account")
    return render(
        request,
        "portal/auth/recovery_codes.html",
        {"codes": reveal["value"].split("\n"), "next_url": next_url},
    )


def _show_recovery_codes(request: HttpRequest, user: Any, *, next_url: str) -> HttpResponse:
    codes = services.recovery_codes_generate(actor=Actor.staff(user), user=user)
    reveal_once(request, title="Recovery codes", value="\n".join(codes))
    request.session[AFTER_CODES_KEY] = next_url
    return redirect("portal:recovery_codes")


@public
@require_POST
def logout(request):
    auth_logout(request)
    messages.info(request, "You are signed out.")
    return redirect("portal:login")


@public
@sensitive_post_parameters("password1", "password2")
@csrf_protect
@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    if request.user.is_authenticated:
        return render(request, "portal/auth/invitation_signed_in.html", status=409)
    invitation = selectors.invitation_get_pending(token=token)
    if invitation is None:
        return render(request, "portal/auth/invitation_invalid.html", status=404)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except services.InvitationInvalidError:
            return render(request, "portal/auth/invitation_invalid.html", status=404)
        except ValidationError as exc:
            apply_errors(form, exc, rename={"password": "password1"})
        else:
            user = membership.user
            dashboard = reverse("portal:dashboard", kwargs={"bank": membership.bank.slug})
            messages.success(request, f"Welcome to {membership.bank.name}.")
            if selectors.two_factor_required(user):
                _start_pending(request, user, dashboard, backend=MODEL_BACKEND)
                return redirect("portal:two_factor_setup")
            return finish_login(request, user, backend=MODEL_BACKEND, next_url=dashboard)
    two_factor_next = (
        settings.STAFF_TWO_FACTOR_FOR_ALL
        or invitation.role == "admin"
        or invitation.bank.require_2fa_for_all
    )
    return render(
        request,
        "portal/auth/invitation_accept.html",
        {"form": form, "invitation": invitation, "two_factor_next": two_factor_next},
    )


@staff_account
@require_http_methods(["GET"])
def account(request):
    return render(
        request,
        "portal/auth/account.html",
        {
            "has_device": StaffTOTPDevice.objects.filter(
                user=request.user, confirmed=True
            ).exists(),
            "recovery_codes_left": services.recovery_codes_remaining(user=request.user),
            "passkeys": selectors.passkey_list(user=request.user),
            "passkeys_enabled": settings.PASSKEYS_ENABLED,
            "can_add_passkey": settings.PASSKEYS_ENABLED and request.user.is_verified(),
            "webauthn_config": webauthn_config(request),
            "two_factor_required": selectors.two_factor_required(request.user),
            "memberships": request.user.memberships.select_related("bank").order_by("bank__name"),
        },
    )


def _fully_signed_in(user) -> bool:
    if not selectors.staff_has_access(user):
        return False
    return not selectors.two_factor_required(user) or user.is_verified()


def _safe_next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _start_pending(request, user, next_url: str, backend: str | None = None) -> None:
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "backend": backend or user.backend,
        "since": time.time(),
        "next": next_url,
    }


def pending_sign_in(request: HttpRequest) -> tuple[Any, str, str] | None:
    """(user, backend, next URL) of a sign-in waiting for its second factor, or None."""
    data = request.session.get(PENDING_KEY)
    if not data or time.time() - data.get("since", 0) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=data["user"], is_active=True).first()
    if user is None:
        return None
    return user, data["backend"], data["next"]


def finish_login(
    request: HttpRequest, user: Any, *, backend: str, next_url: str, device: Any = None
) -> HttpResponse:
    request.session.pop(PENDING_KEY, None)
    auth_login(request, user, backend=backend)
    activity_mark(request)
    if device is not None:
        django_otp.login(request, device)
    return redirect(next_url)
