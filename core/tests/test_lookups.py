"""`field__any=values` finds what `field__in` finds, with one parameter for all the values."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_any_finds_what_in_finds():
    types = list(ContentType.objects.order_by("pk")[:5])
    ids = [t.pk for t in types[::2]]
    models = {t.model for t in types[1::2]}

    assert set(ContentType.objects.filter(pk__any=ids)) == set(
        ContentType.objects.filter(pk__in=ids)
    )
    assert set(ContentType.objects.filter(model__any=models)) == set(
        ContentType.objects.filter(model__in=models)
    )
    assert list(ContentType.objects.filter(pk__any=[])) == []
    assert ContentType.objects.exclude(pk__any=ids).count() == ContentType.objects.count() - len(
        ids
    )


def test_any_sends_one_array_whatever_the_count():
    with CaptureQueriesContext(connection) as queries:
        list(ContentType.objects.filter(pk__any=range(1, 301)))
    (query,) = queries.captured_queries
    assert "= ANY(" in query["sql"]
    assert " IN (" not in query["sql"]


def test_any_refuses_a_single_value():
    with pytest.raises(TypeError, match="collection"):
        ContentType.objects.filter(model__any="user")


def test_any_on_a_foreign_key_takes_ids():
    from django.contrib.auth.models import Permission

    types = list(ContentType.objects.order_by("pk")[:3])
    ids = [t.pk for t in types]
    assert set(Permission.objects.filter(content_type_id__any=ids)) == set(
        Permission.objects.filter(content_type__in=types)
    )
    assert set(Permission.objects.filter(content_type__any=ids)) == set(
        Permission.objects.filter(content_type__in=types)
    )
