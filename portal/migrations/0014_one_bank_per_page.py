"""A Page serves one bank only.

Before the constraint is added, any Page already shared by two banks stops the migration
with the banks' names: which bank keeps the Page is a decision for people, so nothing is
deleted or changed here. Blank Page ids (an integration not configured yet) never collide.
"""

from django.db import migrations, models
from django.db.models import Count


def refuse_shared_pages(apps, schema_editor):
    integration = apps.get_model("portal", "MessengerIntegration")
    shared = (
        integration.objects.exclude(page_id="")
        .values("page_id")
        .annotate(banks=Count("id"))
        .filter(banks__gt=1)
        .values_list("page_id", flat=True)
    )
    clashes = []
    for page_id in sorted(shared):
        slugs = sorted(
            integration.objects.filter(page_id=page_id).values_list("bank__slug", flat=True)
        )
        clashes.append(f"Page {page_id}: banks {', '.join(slugs)}")
    if clashes:
        raise RuntimeError(
            "A Facebook Page may serve one bank only, but these Pages are configured for "
            "more than one bank: " + "; ".join(clashes) + ". Decide which bank keeps each "
            "Page and change the other banks' Page IDs (staff portal, Integration), then run "
            "the migration again. Nothing was changed."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0013_audit_log_cannot_be_wiped"),
    ]

    operations = [
        migrations.RunPython(refuse_shared_pages, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="messengerintegration",
            constraint=models.UniqueConstraint(
                condition=models.Q(("page_id", ""), _negated=True),
                fields=("page_id",),
                name="one_bank_per_page",
                violation_error_message=(
                    "This Page is already connected to another bank. A Page can serve one "
                    "bank only: check the Page ID, or ask the platform team to release the "
                    "Page first."
                ),
            ),
        ),
    ]
