import pytest

from messenger import builders, reference, reference_parse
from messenger.references import Reference


@pytest.mark.parametrize("kind", ["n", "r", "l", "u"])
def test_a_reference_reads_back_as_what_it_names(kind):
    written = reference(kind, 1234)

    assert written == f"bankside:{kind}:1234"
    assert reference_parse(written) == Reference(kind, 1234)


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        "",
        "alert-77",
        "bankside:n:",
        "bankside:n:0",
        "bankside:n:012",
        "bankside:x:12",
        "bankside:n:12\n",
        " bankside:n:12",
        "bankside:n:12:extra",
        "bankside:n:99999999999999999999",
        "bankside:n:١٢",  # digits of another script
    ],
)
def test_anything_else_is_no_reference(metadata):
    assert reference_parse(metadata) is None


@pytest.mark.parametrize("bad", [("x", 1), ("n", 0), ("n", -1), ("n", True), ("n", 2**63)])
def test_a_reference_is_refused_for_a_bad_kind_or_id(bad):
    with pytest.raises(ValueError):
        reference(*bad)


def test_the_longest_reference_fits_well_within_metas_metadata_limit():
    longest = reference("n", 2**63 - 1)

    assert len(longest) <= 30 < builders.METADATA_MAX
