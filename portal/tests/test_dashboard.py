import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from portal import dashboard
from portal.charts import Chart, Series, bar_chart, nice_ceiling
from portal.dashboard import PanelContent, register_panel, unregister_panel
from portal.models import StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory

Role = StaffMembership.Role
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def panels():
    """Registrations made by a test are undone after it."""
    with dashboard._registry.preserved():
        yield


@pytest.fixture
def open_dashboard(sign_in):
    def _open(role=Role.OPERATOR, bank=None):
        bank = bank or BankFactory(slug="harbour")
        client = sign_in(StaffMembershipFactory(bank=bank, role=role).user)
        return client.get(reverse("portal:dashboard", kwargs={"bank": bank.slug})).content.decode()

    return _open


@pytest.mark.django_db
def test_unfilled_slots_show_their_empty_state(open_dashboard, panels):
    page = open_dashboard()

    assert 'id="panel-linking-linked-customers"' in page
    assert "No customer has linked an account on Messenger yet." in page
    assert 'id="panel-notifications-deliveries"' in page
    assert "Charts of the last 24 hours and the last 30 days" in page


@pytest.mark.django_db
def test_a_registered_panel_fills_its_slot_for_the_bank_it_is_drawn_for(open_dashboard, panels):
    seen = []

    def linked_customers(bank):
        seen.append(bank.slug)
        return PanelContent(value=42, caption="customers linked on Messenger")

    register_panel("linking.linked_customers", linked_customers)
    page = open_dashboard()

    assert seen == ["harbour"]
    assert '<p class="tile-value">42</p>' in page and "customers linked on Messenger" in page
    assert "No customer has linked" not in page


@pytest.mark.django_db
def test_a_panel_with_charts_draws_them_inline(open_dashboard, panels):
    chart = Chart("Last 24 hours", [f"{h:02d}" for h in range(24)], [Series("Sent", [1] * 24)])
    register_panel("notifications.deliveries", lambda bank: PanelContent(charts=[chart]))

    page = open_dashboard()

    assert page.count('<svg class="chart"') == 1
    assert "Last 24 hours</title>" in page


@pytest.mark.django_db
def test_a_failing_panel_does_not_break_the_dashboard(open_dashboard, panels):
    def broken(bank):
        raise RuntimeError("database on fire")

    register_panel("notifications.deliveries", broken)

    page = open_dashboard()

    assert "This panel could not be loaded." in page
    assert "Messenger integration" in page


@pytest.mark.django_db
def test_a_panel_can_be_limited_to_some_roles(open_dashboard, panels):
    register_panel(
        "extra.secret_stats",
        lambda bank: PanelContent(value="7"),
        title="Admin statistics",
        roles=[Role.ADMIN],
    )
    bank = BankFactory(slug="harbour")

    assert "Admin statistics" not in open_dashboard(Role.OPERATOR, bank)
    assert "Admin statistics" not in open_dashboard(Role.AUDITOR, bank)
    assert "Admin statistics" in open_dashboard(Role.ADMIN, bank)


def test_registering_a_key_again_replaces_the_panel(panels):
    register_panel("extra.one", lambda bank: None, title="First")
    register_panel("extra.one", lambda bank: None, title="Second")

    titles = [p.title for p in dashboard.panels() if p.key == "extra.one"]

    assert titles == ["Second"]
    unregister_panel("extra.one")
    assert "extra.one" not in {p.key for p in dashboard.panels()}


def test_a_panel_size_must_be_tile_or_wide(panels):
    with pytest.raises(ValueError, match="size"):
        register_panel("extra.bad", lambda bank: None, size="huge")


def test_a_bar_chart_is_well_formed_svg_with_escaped_labels():
    chart = Chart(
        "Deliveries <30 days>",
        ["1 Nov", "2 Nov", "3 & 4"],
        [Series("Delivered", [3, 0, 5], "ok"), Series("Failed", [1, 2, 0], "bad")],
    )

    root = ET.fromstring(str(bar_chart(chart)))

    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Deliveries <30 days>"
    bars = root.findall(f".//{SVG}rect")
    assert len(bars) == 4 + 2  # four non-zero segments and two legend swatches
    tooltips = [g.find(f"{SVG}title").text for g in root.findall(f"{SVG}g")]
    assert tooltips == [
        "1 Nov: Delivered: 3; Failed: 1",
        "2 Nov: Delivered: 0; Failed: 2",
        "3 & 4: Delivered: 5; Failed: 0",
    ]


def test_a_bar_chart_of_nothing_still_draws_its_axis():
    root = ET.fromstring(str(bar_chart(Chart("Empty", ["a", "b"], [Series("Sent", [0, 0])]))))

    assert root.findall(f".//{SVG}line")
    assert "0 in all" in root.find(f"{SVG}desc").text


def test_a_series_needs_a_value_per_label():
    with pytest.raises(ValueError, match="one value per label"):
        bar_chart(Chart("Bad", ["a", "b"], [Series("Sent", [1])]))


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (480, 500), (501, 1000)]
)
def test_the_axis_ends_on_a_round_number(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_a_bar_chart_shows_its_title_and_labels_large_enough_to_read():
    chart = Chart("Deliveries, last 24 hours", ["00", "01"], [Series("Sent", [1, 2], "ok")])

    root = ET.fromstring(str(bar_chart(chart)))

    (title,) = [t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-title"]
    assert title.text == "Deliveries, last 24 hours"
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") != "chart-title"]
    assert {t.text for t in labels} >= {"00", "01", "Sent"}
    assert min(int(t.get("font-size")) for t in labels) >= 14
