"""A stand-in for a bank's core systems: plausible account events, posted over HTTP.

`CoreSimulator` makes the events and keeps the running balances they imply; `CoreApi`
posts them to `/api/v1/` with a real API key, waiting out `429 Retry-After` and retrying
transient failures. Neither touches the database: everything goes through the API.
"""

import datetime as dt
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import httpx

from demo.roster import DemoAccount, DemoCustomer

EVENT_TYPES = (
    "transaction.posted",
    "balance.updated",
    "receipt.issued",
    "shipment.updated",
    "fraud.alert",
)
DEFAULT_MIX = {
    "transaction.posted": 6.0,
    "balance.updated": 3.0,
    "receipt.issued": 1.0,
    "shipment.updated": 1.0,
    "fraud.alert": 0.0,
}
CENT = Decimal("0.01")
CREDIT_LIMIT = Decimal("2500.00")
SHIPMENT_STEPS = ("label_created", "in_transit", "out_for_delivery", "delivered")


@dataclass(frozen=True)
class Merchant:
    name: str
    category: str
    low: int
    high: int


SHOPS = (
    Merchant("Corner Coffee", "eating_out", 3, 9),
    Merchant("FreshMart", "groceries", 12, 140),
    Merchant("City Transit", "transport", 2, 30),
    Merchant("Bookhouse", "shopping", 8, 60),
    Merchant("Harbour Pharmacy", "health", 5, 45),
    Merchant("Trattoria Roma", "eating_out", 18, 95),
    Merchant("Volt Energy", "bills", 40, 160),
    Merchant("StreamBox", "subscriptions", 8, 18),
    Merchant("Petrol & Go", "transport", 35, 90),
    Merchant("Cinema Lux", "leisure", 10, 32),
)
ONLINE_SHOPS = (
    ("Northwind Outfitters", (("Rain jacket", 89), ("Wool socks", 12), ("Beanie", 19))),
    ("Pixel Gadgets", (("USB-C cable", 15), ("Phone case", 25), ("Power bank", 39))),
    ("Green Leaf Books", (("Travel guide", 22), ("Cookbook", 31), ("Notebook", 9))),
)
CARRIERS = ("DHL", "UPS", "La Poste", "Royal Mail")
FRAUD_SPOTS = (
    ("LuxWatch Online", "Macau"),
    ("ElectroWorld Outlet", "Lagos"),
    ("Gift Cards Direct", "Panama City"),
    ("Jet Charter Booking", "Reykjavik"),
)


@contextmanager
def quiet_http_log() -> Iterator[None]:
    """Leave out httpx's line per request: the commands print their own summaries."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


RUN_ID_LETTERS = "abcdefghjkmnpqrstuvwxyz"


def _run_id() -> str:
    """Letters only: digits next to an event's sequence number could make a run that the
    API refuses as a card number (13 digits or more passing the Luhn check)."""
    return "".join(secrets.choice(RUN_ID_LETTERS) for _ in range(8))


@dataclass
class _Order:
    customer: DemoCustomer
    account: DemoAccount
    number: str
    merchant: str
    carrier: str
    step: int = -1


@dataclass
class CoreSimulator:
    """Makes realistic events for `customers`, weighted by `mix`.

    Balances follow the transactions posted; shipments follow the receipts issued; every
    `fraud_every`-th event (0: none beyond the mix) is a fraud alert.
    """

    customers: list[DemoCustomer]
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    fraud_every: int = 0
    rng: random.Random = field(default_factory=random.Random)
    run_id: str = field(default_factory=_run_id)
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        if not self.customers:
            raise ValueError("at least one customer is needed")
        self.balances = {a.id: a.balance for c in self.customers for a in c.accounts}
        self.changed: set[str] = set()
        self.orders: list[_Order] = []
        self.made = 0

    def next_event(self) -> dict:
        self.made += 1
        if self.fraud_every and self.made % self.fraud_every == 0:
            kind = "fraud.alert"
        else:
            kinds = [k for k in EVENT_TYPES if self.mix.get(k, 0) > 0]
            kind = self.rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        if kind == "shipment.updated" and not self.orders:
            kind = "receipt.issued"
        maker = {
            "transaction.posted": self._transaction,
            "balance.updated": self._balance,
            "receipt.issued": self._receipt,
            "shipment.updated": self._shipment,
            "fraud.alert": self._fraud,
        }[kind]
        customer, account, data = maker()
        return {
            "id": f"sim-{self.run_id}-{self.made:07d}",
            "type": kind,
            "customer_id": customer.id,
            "account_id": account.id,
            "occurred_at": self.now().isoformat(timespec="seconds"),
            "data": data,
        }

    def _pick(self, kind: str | None = None) -> tuple[DemoCustomer, DemoAccount]:
        customer = self.rng.choice(self.customers)
        accounts = [a for a in customer.accounts if kind is None or a.kind == kind]
        return customer, self.rng.choice(accounts or list(customer.accounts))

    def _available(self, account: DemoAccount) -> Decimal:
        balance = self.balances[account.id]
        return balance + CREDIT_LIMIT if account.kind == "credit_card" else balance

    def _transaction(self):
        customer, account = self._pick()
        if account.kind == "checking" and self.rng.random() < 0.08:
            amount = Decimal(self.rng.randint(40, 400)) + Decimal(self.rng.randint(0, 99)) / 100
            data = {"description": "Incoming transfer", "category": "income"}
        else:
            shop = self.rng.choice(SHOPS)
            cents = Decimal(self.rng.randint(0, 99)) / 100
            amount = -(Decimal(self.rng.randint(shop.low, shop.high)) + cents)
            data = {
                "description": f"Card payment at {shop.name}",
                "merchant": shop.name,
                "category": shop.category,
            }
            if account.kind == "credit_card":
                data["card_last4"] = account.last4
        self.balances[account.id] += amount
        self.changed.add(account.id)
        return customer, account, {"amount": money(amount), "currency": account.currency, **data}

    def _balance(self):
        changed = [(c, a) for c in self.customers for a in c.accounts if a.id in self.changed]
        customer, account = self.rng.choice(changed) if changed else self._pick()
        self.changed.discard(account.id)
        return (
            customer,
            account,
            {
                "available": money(self._available(account)),
                "ledger": money(self.balances[account.id]),
                "currency": account.currency,
            },
        )

    def _receipt(self):
        customer, account = self._pick("credit_card")
        merchant, catalogue = self.rng.choice(ONLINE_SHOPS)
        chosen = self.rng.sample(catalogue, k=self.rng.randint(1, len(catalogue)))
        items = [
            {"title": title, "quantity": self.rng.randint(1, 2), "price": money(Decimal(price))}
            for title, price in chosen
        ]
        shipping = Decimal("4.90")
        total = sum((Decimal(i["price"]) * i["quantity"] for i in items), shipping)
        number = f"HB-{self.run_id[:4].upper()}-{self.made:05d}"
        self.orders.append(_Order(customer, account, number, merchant, self.rng.choice(CARRIERS)))
        self.balances[account.id] -= total
        self.changed.add(account.id)
        return (
            customer,
            account,
            {
                "order_number": number,
                "merchant": merchant,
                "items": items,
                "shipping": money(shipping),
                "total": money(total),
                "currency": account.currency,
            },
        )

    def _shipment(self):
        order = self.orders[0]
        order.step += 1
        if order.step == len(SHIPMENT_STEPS) - 1:
            self.orders.pop(0)
        return (
            order.customer,
            order.account,
            {
                "order_number": order.number,
                "carrier": order.carrier,
                "status": SHIPMENT_STEPS[order.step],
                "tracking_url": f"https://tracking.example.com/{order.number}",
            },
        )

    def _fraud(self):
        customer, account = self._pick("credit_card")
        merchant, place = self.rng.choice(FRAUD_SPOTS)
        amount = -(Decimal(self.rng.randint(600, 2400)) + Decimal(self.rng.randint(0, 99)) / 100)
        return (
            customer,
            account,
            {
                "alert_id": f"fa-{self.run_id}-{self.made:07d}",
                "amount": money(amount),
                "currency": account.currency,
                "merchant": merchant,
                "card_last4": account.last4,
                "location": place,
            },
        )


class CoreApiError(Exception):
    """The API refused a call for good (not a wait or a transient failure)."""


@dataclass
class Tally:
    posted: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    waits: int = 0
    retries: int = 0
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        total = sum(self.posted.values())
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.posted.items()))
        return (
            f"{total} events ({kinds or 'none'}); accepted {self.outcomes['accepted']}, "
            f"duplicate {self.outcomes['duplicate']}, rejected {self.outcomes['rejected']}; "
            f"rate-limit waits {self.waits}, retries {self.retries}"
        )


class CoreApi:
    """The bank's core talking to `/api/v1/` with its API key."""

    MAX_ATTEMPTS = 6
    MAX_WAIT_SECONDS = 60.0

    def __init__(
        self,
        client: httpx.Client,
        *,
        tally: Tally | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.tally = tally or Tally()
        self.sleep = sleep

    def whoami(self) -> dict:
        return self._call("GET", "/api/v1/whoami").json()

    def customer_put(self, customer: DemoCustomer) -> None:
        self._call(
            "PUT", f"/api/v1/customers/{customer.id}", json=customer.as_api(with_login=False)
        )

    def events_post(self, events: list[dict]) -> dict:
        """Post a batch; the Idempotency-Key makes a retry after a lost answer safe."""
        key = f"{events[0]['id']}+{len(events)}"
        report = self._call(
            "POST", "/api/v1/events", json={"events": events}, idempotency_key=key
        ).json()
        for event, result in zip(events, report["results"], strict=True):
            self.tally.posted[event["type"]] += 1
            self.tally.outcomes[result["status"]] += 1
            if result["status"] == "rejected" and len(self.tally.reasons) < 5:
                found = "; ".join(f"{r['path']} {r['reason']}" for r in result["reasons"])
                self.tally.reasons.append(f"{event['id']} ({event['type']}): {found}")
        return report

    def _call(self, method, path, *, json=None, idempotency_key=None) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        for attempt in range(1, self.MAX_ATTEMPTS + 1):
            last = attempt == self.MAX_ATTEMPTS
            try:
                response = self.client.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise CoreApiError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                self._back_off(attempt)
                continue
            if response.status_code == 429 and not last:
                self.tally.waits += 1
                self.sleep(self._retry_after(response))
                continue
            if response.status_code >= 500 and not last:
                self._back_off(attempt)
                continue
            if response.status_code >= 400:
                raise CoreApiError(
                    f"{method} {path} answered {response.status_code}: {_detail(response)}"
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _back_off(self, attempt: int) -> None:
        self.tally.retries += 1
        self.sleep(min(10.0, 0.5 * 2 ** (attempt - 1)))

    def _retry_after(self, response: httpx.Response) -> float:
        try:
            seconds = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            seconds = 1.0
        return min(max(seconds, 0.0), self.MAX_WAIT_SECONDS)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no problem details"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


def parse_mix(raw: str) -> dict[str, float]:
    """`transaction.posted=6,fraud.alert=1`: weights per event type; unnamed types get 0."""
    mix = dict.fromkeys(EVENT_TYPES, 0.0)
    for part in raw.split(","):
        name, sep, weight = part.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part.strip()!r} is not TYPE=WEIGHT")
        if name not in mix:
            raise ValueError(f"{name!r} is not an event type ({', '.join(EVENT_TYPES)})")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"the weight of {name} must be a number") from None
        if not 0 <= value <= 1000 or value != value:
            raise ValueError(f"the weight of {name} must be from 0 to 1000")
        mix[name] = value
    if not any(mix.values()):
        raise ValueError("at least one event type needs a weight above 0")
    return mix
