"""Who and what the demo is made of: its bank, its staff and its customers.

The seed creates them and the core simulator posts events about the same customers, so
both read these definitions.
"""

from dataclasses import dataclass
from decimal import Decimal

BANK_NAME = "Harbour Bank"
BANK_SLUG = "harbour"
PAGE_ID = "100200300400"
PAGE_NAME = "Harbour Bank"

STAFF_PASSWORD = "harbour demo staff"
CUSTOMER_PASSWORD = "harbour demo customer"


@dataclass(frozen=True)
class StaffLogin:
    username: str
    role: str  # a StaffMembership role, or "platform" for a platform admin
    label: str


STAFF = (
    StaffLogin("demo-admin", "admin", "bank admin"),
    StaffLogin("demo-operator", "operator", "bank operator"),
    StaffLogin("demo-auditor", "auditor", "bank auditor"),
    StaffLogin("demo-platform", "platform", "platform admin"),
)


@dataclass(frozen=True)
class DemoAccount:
    id: str
    kind: str
    name: str
    last4: str
    currency: str
    balance: Decimal

    def as_api(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "last4": self.last4,
            "currency": self.currency,
            "balance": str(self.balance),
        }


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    locale: str
    accounts: tuple[DemoAccount, ...]
    username: str = ""  # demo-directory login; only the seeded customers have one

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def as_api(self, *, with_login: bool) -> dict:
        body: dict = {
            "name": self.name,
            "locale": self.locale,
            "accounts": [account.as_api() for account in self.accounts],
        }
        if with_login and self.username:
            body["directory"] = {"username": self.username, "password": CUSTOMER_PASSWORD}
        return body


def _customer(number: int, name: str, locale: str, currency: str, username: str = ""):
    key = f"{number:03d}"
    checking = Decimal(1850 + number * 137 % 900).quantize(Decimal("0.01"))
    return DemoCustomer(
        id=f"demo-cu-{key}",
        name=name,
        locale=locale,
        username=username,
        accounts=(
            DemoAccount(
                f"demo-chk-{key}",
                "checking",
                "Everyday account",
                f"{4000 + number * 37 % 5000:04d}",
                currency,
                checking,
            ),
            DemoAccount(
                f"demo-card-{key}",
                "credit_card",
                "Visa card",
                f"{1000 + number * 53 % 8000:04d}",
                currency,
                Decimal("-120.00"),
            ),
        ),
    )


# The first four have demo-directory logins and are seeded; Ben is linked by the seed
# so updates flow at once, and the others are left to link by hand.
SEEDED = (
    _customer(1, "Ana Souza", "en", "EUR", "ana"),
    _customer(2, "Ben Carter", "en_GB", "GBP", "ben"),
    _customer(3, "Chloé Martin", "fr", "EUR", "chloe"),
    _customer(4, "David Weber", "de", "EUR", "david"),
)
PRELINKED_USERNAME = "ben"

_MORE_NAMES = (
    "Elena Rossi",
    "Farid Haddad",
    "Grace Okafor",
    "Hugo Lefèvre",
    "Ingrid Larsen",
    "Jonas Becker",
    "Keiko Tanaka",
    "Liam Byrne",
    "Maya Cohen",
    "Noah Jensen",
    "Olivia Brown",
    "Pedro Alves",
)
MAX_CUSTOMERS = 200


def roster(count: int) -> list[DemoCustomer]:
    """The first `count` demo customers: the seeded four, then generated ones."""
    if not 1 <= count <= MAX_CUSTOMERS:
        raise ValueError(f"count must be from 1 to {MAX_CUSTOMERS}")
    customers = list(SEEDED[:count])
    for number in range(len(SEEDED) + 1, count + 1):
        name = _MORE_NAMES[(number - len(SEEDED) - 1) % len(_MORE_NAMES)]
        customers.append(_customer(number, name, "en", "EUR"))
    return customers
