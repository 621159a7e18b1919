from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from portal import selectors, services
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.forms import InvitationCreateForm
from portal.models import StaffMembership
from portal.staff_forms import handle_staff_form
from portal.views._shared import reveal_once, take_reveal


@bank_staff(view=[ADMIN, AUDITOR])
def staff_list(request, bank):
    return render(
        request,
        "portal/staff/list.html",
        {
            "bank": bank,
            "memberships": selectors.membership_list(bank=bank),
            "invitations": selectors.invitation_list(bank=bank),
            "reveal": take_reveal(request),
        },
    )


@bank_staff(view=[ADMIN], change=[ADMIN])
def staff_invite(request, bank):
    first_admin = not StaffMembership.objects.for_bank(bank).filter(role=ADMIN).exists()
    form = InvitationCreateForm(request.POST or None, first_admin=first_admin)

    def invite(data):
        issued = services.invitation_create(
            actor=Actor.staff(request.user),
            bank=bank,
            role=data["role"],
            email=data["email"],
            created_by=request.user,
        )
        path = reverse("portal:invitation_accept", kwargs={"token": issued.token})
        reveal_once(
            request,
            title=f"Invitation link ({issued.invitation.get_role_display()})",
            value=f"{settings.PUBLIC_BASE_URL}{path}",
            note="Send it to the person you invite. It works once and expires in 72 "
            "hours. It is not shown again.",
        )

    done = handle_staff_form(
        request,
        form,
        action=invite,
        redirect_to=reverse("portal:staff_list", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/staff/invite.html",
        {"bank": bank, "form": form, "first_admin": first_admin},
    )


@bank_staff(change=[ADMIN])
def invitation_revoke(request, bank, invitation: int):
    target = selectors.invitation_get(bank=bank, pk=invitation)
    try:
        services.invitation_revoke(actor=Actor.staff(request.user), invitation=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The invitation is revoked: its link no longer works.")
    return redirect("portal:staff_list", bank=bank.slug)


@bank_staff(change=[ADMIN])
def membership_remove(request, bank, membership: int):
    target = selectors.membership_get(bank=bank, pk=membership)
    try:
        services.staff_membership_revoke(actor=Actor.staff(request.user), membership=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{target.user.get_username()} no longer has access.")
    return redirect("portal:staff_list", bank=bank.slug)
