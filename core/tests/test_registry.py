"""The registry that lets an app above show what a lower app draws."""

import pytest

from core.registry import AlreadyRegistered, Registry


def test_items_come_in_the_order_given_by_order_by():
    registry: Registry[tuple[int, str]] = Registry("entry", order_by=lambda e: e)
    registry.register("b", (2, "b"))
    registry.register("c", (1, "z"))
    registry.register("a", (2, "a"))

    assert list(registry) == [(1, "z"), (2, "a"), (2, "b")]


def test_without_order_by_items_come_in_the_order_they_were_registered():
    registry: Registry[str] = Registry("entry")
    for key in ("second", "first", "third"):
        registry.register(key, key.upper())

    assert list(registry) == ["SECOND", "FIRST", "THIRD"]
    assert registry.as_dict() == {"second": "SECOND", "first": "FIRST", "third": "THIRD"}


def test_a_key_registered_twice_raises_and_keeps_the_first():
    registry: Registry[str] = Registry("sidebar entry")
    registry.register("linking.links", "first")

    with pytest.raises(AlreadyRegistered, match=r"sidebar entry 'linking\.links' is already"):
        registry.register("linking.links", "second")

    assert list(registry) == ["first"]


def test_a_registry_that_replaces_keeps_the_last_registration_in_the_first_place():
    registry: Registry[str] = Registry("panel", replace=True)
    registry.register("one", "first")
    registry.register("two", "other")
    registry.register("one", "second")

    assert list(registry) == ["second", "other"]


def test_register_is_also_a_decorator_that_returns_what_it_decorates():
    registry: Registry[object] = Registry("handler")

    @registry.register("greet")
    def greet() -> str:
        return "hello"

    assert registry.get("greet") is greet
    assert greet() == "hello"


def test_unregister_removes_the_key_and_ignores_an_unknown_one():
    registry: Registry[str] = Registry("entry")
    registry.register("one", "1")

    registry.unregister("one")
    registry.unregister("never")

    assert "one" not in registry
    assert len(registry) == 0
    registry.register("one", "again")
    assert registry.get("one") == "again"


def test_preserved_undoes_what_was_registered_and_unregistered_inside():
    registry: Registry[str] = Registry("entry")
    registry.register("kept", "k")
    registry.register("removed", "r")

    with registry.preserved():
        registry.unregister("removed")
        registry.register("added", "a")
        assert list(registry) == ["k", "a"]

    assert registry.as_dict() == {"kept": "k", "removed": "r"}


def test_preserved_restores_even_when_the_block_fails():
    registry: Registry[str] = Registry("entry")

    with pytest.raises(RuntimeError), registry.preserved():
        registry.register("added", "a")
        raise RuntimeError("boom")

    assert len(registry) == 0
