"""Tenancy: every staff read goes through `for_staff`, which scopes rows to the user's banks.

A model that belongs to a bank uses `BankScopedQuerySet` as its default manager and names
the path from itself to its bank in `bank_path` (`"bank"` by default, `"customer__bank"`
for a row two steps away). A system check (`portal.checks`) refuses models that hold a
foreign key to `Bank` without it, so forgetting the scope fails `manage.py check`.
"""

from collections.abc import Iterable
from typing import TypeVar

from django.apps import apps
from django.db import models

_M = TypeVar("_M", bound=models.Model)


def staff_bank_ids(user, roles: Iterable[str] | None = None) -> models.QuerySet | None:
    """The ids of banks where `user` holds one of `roles`; None means every bank."""
    if user is None or not user.is_authenticated or not user.is_active:
        return apps.get_model("portal", "StaffMembership").objects.none().values("bank_id")
    if user.is_superuser:
        return None
    memberships = apps.get_model("portal", "StaffMembership").objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return memberships.values("bank_id")


class BankScopedQuerySet(models.QuerySet[_M]):
    def for_staff(self, user, *, roles: Iterable[str] | None = None) -> "BankScopedQuerySet[_M]":
        """Only the rows of banks where `user` is staff (with one of `roles`, if given).

        Platform admins (superusers) see every bank; anonymous or inactive users see nothing.
        """
        bank_ids = staff_bank_ids(user, roles)
        if bank_ids is None:
            return self.all()
        path = getattr(self.model, "bank_path", "bank")
        lookup = "pk__in" if path == "pk" else f"{path}__in"
        return self.filter(**{lookup: bank_ids})

    def for_bank(self, bank) -> "BankScopedQuerySet[_M]":
        path = getattr(self.model, "bank_path", "bank")
        return self.filter(**{path: bank})
