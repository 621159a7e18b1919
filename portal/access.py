"""Who may open which staff page: the one mechanism every staff view goes through.

Each staff view is wrapped by exactly one of `public`, `staff_account`, `platform_admin`
or `bank_staff`, which records an `Access` on the view so the URL map can be audited
(the tests walk every staff URL and check it). `bank_staff` resolves the `<bank>` slug
in the URL through `Bank.objects.for_staff(user)`: a bank the user is not staff of does
not exist for them (404); a bank where their role lacks the permission is a 403.
GET and HEAD need a role in `view`, POST a role in `change`; platform admins may do both.
"""

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.cache import add_never_cache_headers

from portal.models import Bank, StaffMembership
from portal.selectors import staff_has_access, staff_idle_timeout, two_factor_required

Role = StaffMembership.Role
ADMIN, OPERATOR, AUDITOR = Role.ADMIN, Role.OPERATOR, Role.AUDITOR
EVERYONE = (ADMIN, OPERATOR, AUDITOR)
PLATFORM_ADMIN = "platform_admin"
LAST_ACTIVITY_KEY = "portal.last_activity"
# The last activity is written at most this often (seconds): a page and the requests it
# makes right after cost one session write, not one each.
ACTIVITY_RESOLUTION = 10
SAFE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Access:
    """What a staff view requires: its scope, and the roles that may read and change."""

    scope: str  # "public", "account", "platform" or "bank"
    view: frozenset[str] = frozenset()
    change: frozenset[str] = frozenset()

    @property
    def roles(self) -> frozenset[str]:
        return self.view | self.change


@dataclass(frozen=True)
class StaffContext:
    """The signed-in staff member as a page sees them: their bank and role there."""

    user: object
    bank: Bank | None = None
    role: str = ""

    @property
    def is_platform_admin(self) -> bool:
        return bool(getattr(self.user, "is_superuser", False))

    @property
    def can_administer(self) -> bool:
        return self.role in (ADMIN, PLATFORM_ADMIN)

    @property
    def can_operate(self) -> bool:
        return self.role in (ADMIN, OPERATOR, PLATFORM_ADMIN)

    @property
    def can_audit(self) -> bool:
        return self.role in (ADMIN, AUDITOR, PLATFORM_ADMIN)

    @property
    def role_label(self) -> str:
        if self.role == PLATFORM_ADMIN:
            return "Platform admin"
        return Role(self.role).label if self.role in Role.values else ""


def staff_context(request) -> dict:
    """Template context processor: `staff` on every page that went through this module."""
    return {"staff": getattr(request, "staff", None)}


def public(view_func):
    """A staff page anyone may open (sign-in, invitation links)."""

    @functools.wraps(view_func)
    def wrapper(request, *args, **kwargs):
        response = view_func(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    wrapper.staff_access = Access("public")
    return wrapper


def staff_account(view_func):
    """A page for any signed-in staff member, about themselves rather than a bank."""

    @functools.wraps(view_func)
    def wrapper(request, *args, **kwargs):
        refusal = _session_refusal(request)
        if refusal is not None:
            return refusal
        request.staff = StaffContext(
            request.user, role=PLATFORM_ADMIN if request.user.is_superuser else ""
        )
        response = view_func(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    wrapper.staff_access = Access("account")
    return wrapper


def platform_admin(view_func):
    """A page for platform admins (superusers) only."""

    @functools.wraps(view_func)
    def wrapper(request, *args, **kwargs):
        refusal = _session_refusal(request)
        if refusal is not None:
            return refusal
        if not request.user.is_superuser:
            raise PermissionDenied("Only platform admins can do this.")
        request.staff = StaffContext(request.user, role=PLATFORM_ADMIN)
        response = view_func(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    wrapper.staff_access = Access("platform")
    return wrapper


def bank_staff(*, view: Iterable[str] = (), change: Iterable[str] = ()):
    """A page of one bank, named by the `<slug:bank>` URL parameter.

    The view receives the `Bank` (never the slug); anything else it loads must be
    fetched through that bank, so an id from another bank is a 404 too.
    """
    access = Access("bank", frozenset(view), frozenset(change))
    allowed_methods = [
        *(SAFE_METHODS if access.view else ()),
        *(("POST",) if access.change else ()),
    ]

    def decorator(view_func):
        @functools.wraps(view_func)
        def wrapper(request, *args, bank: str, **kwargs):
            refusal = _session_refusal(request)
            if refusal is not None:
                return refusal
            user = request.user
            bank_obj = Bank.objects.for_staff(user).filter(slug=bank).first()
            if bank_obj is None:
                raise Http404("No such bank.")
            role = PLATFORM_ADMIN if user.is_superuser else _role_at(user, bank_obj)
            request.staff = StaffContext(user, bank=bank_obj, role=role)
            if role != PLATFORM_ADMIN and role not in access.roles:
                raise PermissionDenied("Your role at this bank does not allow this.")
            if request.method not in allowed_methods:
                return HttpResponseNotAllowed(allowed_methods)
            needed = access.view if request.method in SAFE_METHODS else access.change
            if role != PLATFORM_ADMIN and role not in needed:
                raise PermissionDenied("Your role at this bank does not allow this.")
            response = view_func(request, bank_obj, *args, **kwargs)
            add_never_cache_headers(response)
            return response

        wrapper.staff_access = access
        return wrapper

    return decorator


def _role_at(user, bank: Bank) -> str:
    return (
        StaffMembership.objects.filter(user=user, bank=bank).values_list("role", flat=True).first()
        or ""
    )


def _session_refusal(request):
    """A redirect to sign in when the session may not use staff pages, else None.

    A session that signed in without a second factor loses it as soon as the account
    needs one (say, promoted to admin): it is signed out and must sign in again.
    """
    user = request.user
    login_url = resolve_url(settings.LOGIN_URL)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), login_url)
    if not staff_has_access(user):
        logout(request)
        messages.error(request, "This account has no access to any bank.")
        return redirect_to_login(request.get_full_path(), login_url)
    if two_factor_required(user) and not user.is_verified():
        logout(request)
        messages.info(request, "Your account now needs two-factor sign-in. Sign in again.")
        return redirect_to_login(request.get_full_path(), login_url)
    return _idle_refusal(request, login_url)


def activity_mark(request: HttpRequest) -> None:
    """Record that the signed-in staff member did something now (sign-in, a page)."""
    request.session[LAST_ACTIVITY_KEY] = int(time.time())


def _polling(request: HttpRequest) -> bool:
    """A read asking for JSON: what a page's script sends on a timer, not a person."""
    return request.method in SAFE_METHODS and "application/json" in request.headers.get(
        "Accept", ""
    )


def _idle_refusal(request: HttpRequest, login_url: str) -> HttpResponseRedirect | None:
    """Sign out a session idle for longer than its banks allow (`Bank.idle_timeout_minutes`);
    otherwise count this request as activity, unless it is a page polling a JSON feed by
    itself (the agent inbox): a tab left open must not keep a session alive."""
    now = int(time.time())
    last = request.session.get(LAST_ACTIVITY_KEY)
    if isinstance(last, int):
        timeout = staff_idle_timeout(request.user)
        if now - last > timeout.total_seconds():
            minutes = int(timeout.total_seconds() // 60)
            logout(request)
            messages.info(
                request,
                f"You were signed out after {minutes} minute{'s' if minutes != 1 else ''} "
                "without activity. Sign in again.",
            )
            return redirect_to_login(request.get_full_path(), login_url)
        if now - last < ACTIVITY_RESOLUTION or _polling(request):
            return None
    request.session[LAST_ACTIVITY_KEY] = now
    return None
