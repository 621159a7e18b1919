from django.apps import apps
from django.core import checks

from portal.tenancy import BankScopedQuerySet

PROJECT_APPS = {"portal", "linking", "notifications", "conversation", "demo"}
EXEMPT = {("portal", "auditchain")}


@checks.register(checks.Tags.models)
def check_bank_models_are_scoped(app_configs=None, **kwargs):
    """Every model with a foreign key to Bank must be reachable only through `for_staff`."""
    bank = apps.get_model("portal", "Bank")
    errors = []
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label not in PROJECT_APPS or (meta.app_label, meta.model_name) in EXEMPT:
            continue
        holds_bank = any(
            field.is_relation and field.related_model is bank and field.many_to_one
            for field in meta.concrete_fields
        ) or hasattr(model, "bank_path")
        if holds_bank and not isinstance(model._default_manager.all(), BankScopedQuerySet):
            errors.append(
                checks.Error(
                    f"{meta.label} belongs to a bank but its default manager is not "
                    "BankScopedQuerySet-based, so staff reads could skip the tenancy scope.",
                    hint="Set `objects = BankScopedQuerySet.as_manager()` and `bank_path`.",
                    obj=model,
                    id="portal.E001",
                )
            )
    return errors
