"""`field__any=values`: `field__in` for the hot paths, with one parameter however many values.

Django's `in` lookup prepares every value through the field and writes one placeholder
each, so a claim of 250 ids pays 250 conversions and a statement text of its own size.
`any` takes the values as they are stored (ids, text) and, on PostgreSQL, sends them as
one array parameter (`= ANY(%s)`): one conversion and one statement text whatever the
count. Elsewhere (SQLite in the demo) it is `IN` with a placeholder a value.

Values are not converted: pass what the column holds (ints for keys, str for text), never
model instances or lazy objects.
"""

from typing import TYPE_CHECKING, Any

from django.db.models import Field, ForeignObject, Lookup

from core.db.rows import any_of

if TYPE_CHECKING:  # generic in the type stubs only
    _Lookup = Lookup[Any]
else:
    _Lookup = Lookup


class AnyOf(_Lookup):
    lookup_name = "any"
    prepare_rhs = False
    can_use_none_as_rhs = False

    def get_prep_lookup(self) -> Any:
        values = self.rhs
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError("__any takes a collection of values")
        return list(values)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql, params = any_of(lhs, self.rhs, using=connection)
        return sql, (*lhs_params, *params)


def lookups_register() -> None:
    """Make `__any` available on every field (called once, by `CoreConfig.ready`): on
    foreign keys too, whose lookups Django keeps apart (it takes their ids as they are)."""
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(AnyOf)
