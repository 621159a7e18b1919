"""The demo bank, seeded the way a bank would set itself up, and safe to run again.

Everything goes through the services a bank's staff would use (each audited) or over
HTTP: the sandbox (standing in for Meta) through its control and Graph APIs, the bank's
customers through the core-banking API with the bank's own key, and the linked demo
customer through the real Log In pages. A second run finds everything in place and
writes nothing.
"""

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django_otp.oath import TOTP

from demo import keyfile
from demo.roster import (
    BANK_NAME,
    BANK_SLUG,
    CUSTOMER_PASSWORD,
    PAGE_ID,
    PAGE_NAME,
    PRELINKED_USERNAME,
    SEEDED,
    STAFF,
    STAFF_PASSWORD,
    DemoCustomer,
    StaffLogin,
)
from demo.simulator import quiet_http_log
from linking.models import Consent, Customer
from messenger import GraphClient
from portal import services
from portal.audit import Actor
from portal.models import (
    Bank,
    MessageTemplate,
    MessengerIntegration,
    StaffTOTPDevice,
    UtilityTemplate,
)
from portal.services.integration import page_credentials

ACTOR = Actor.system("manage.py seed_demo")
Status = MessengerIntegration.Status
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ACCOUNT_VALUE = re.compile(r'name="accounts" value="(\d+)"')
REVIEW_WAIT_SECONDS = 15.0
LINK_WAIT_SECONDS = 20.0


class SeedError(Exception):
    """The demo could not be seeded; the message says what to do."""


@dataclass(frozen=True)
class TotpCode:
    username: str
    label: str
    code: str
    seconds_left: int


@dataclass(frozen=True)
class Seeded:
    bank: Bank
    key_file: Path
    linked_psid: str


def refuse_outside_demo() -> None:
    """Known passwords must never exist in production: seed only beside the sandbox."""
    if not settings.SANDBOX_ENABLED:
        raise SeedError(
            "The demo seeds staff with known passwords, so it runs only where the Messenger "
            "sandbox is enabled (local and test settings), never with production settings."
        )


def seed(*, url: str, key_file: Path, say: Callable[[str], None] = lambda _: None) -> Seeded:
    """Seed the demo bank against the portal running at `url` (with its sandbox)."""
    refuse_outside_demo()
    url = url.rstrip("/")
    with quiet_http_log(), httpx.Client(base_url=url, timeout=20) as http:
        _portal_answers(http, url)
        bank, api_key = _bank(say, key_file)
        integration = MessengerIntegration.objects.get(bank=bank)
        _sandbox_page(http, url, bank, integration, say)
        with GraphClient(f"{url}/sandbox/graph", settings.MESSENGER_GRAPH_API_VERSION) as graph:
            _live(integration, graph, say)
            _utility_templates(bank, graph, say)
        _staff(bank, say)
        _customers(http, bank, api_key, say)
        psid = _prelinked(http, url, bank, integration, say)
    return Seeded(bank=bank, key_file=key_file, linked_psid=psid)


def _portal_answers(http: httpx.Client, url: str) -> None:
    try:
        answer = http.get("/sandbox/api/pages")
    except httpx.HTTPError as exc:
        raise SeedError(
            f"The portal does not answer at {url} ({type(exc).__name__}): start it first "
            "(`manage.py run_demo` does both)."
        ) from None
    if answer.status_code != 200:
        raise SeedError(
            f"{url} has no Messenger sandbox (GET /sandbox/api/pages answered "
            f"{answer.status_code})."
        )


# A number from Ofcom's range for drama: it reaches no one.
SUPPORT_PHONE = "+44 20 7946 0018"


def _bank(say, key_file: Path) -> tuple[Bank, str]:
    bank = Bank.objects.filter(slug=BANK_SLUG).first()
    if bank is None:
        onboarded = services.bank_onboard(
            actor=ACTOR,
            name=BANK_NAME,
            slug=BANK_SLUG,
            page_id=PAGE_ID,
            page_access_token=f"EAAdemo{secrets.token_urlsafe(32)}",
            app_secret=secrets.token_hex(16),
            support_phone=SUPPORT_PHONE,
        )
        keyfile.write(key_file, onboarded.api_key_secret)
        say(f"Onboarded {BANK_NAME} ({BANK_SLUG}) with its policies and templates.")
        return onboarded.bank, onboarded.api_key_secret
    stored = keyfile.read(key_file)
    known = services.api_key_authenticate(presented=stored) if stored else None
    if known is not None and known.bank_id == bank.pk:
        return bank, stored
    issued = services.api_key_create(actor=ACTOR, bank=bank, name="Core banking simulator")
    keyfile.write(key_file, issued.secret)
    say(f"Issued a new API key for the core simulator, kept in {key_file}.")
    return bank, issued.secret


def _sandbox_page(http, url, bank, integration, say) -> None:
    """Meta's side: the Page with the same credentials, its webhook pointing at the bank."""
    webhook = url + reverse("messenger-webhook", args=[bank.slug])
    creds = page_credentials(integration)
    pages = http.get("/sandbox/api/pages").json()["pages"]
    current = next((p for p in pages if p["page_id"] == integration.page_id), None)
    if current is None or current.get("webhook_url") != webhook or current.get("name") != PAGE_NAME:
        page: dict[str, object] = {
            "page_id": creds.page_id,
            "name": PAGE_NAME,
            "access_token": creds.access_token,
            "app_secret": creds.app_secret,
            "webhook_url": webhook,
            "verify_token": integration.verify_token,
        }
        if integration.subscribed_fields:  # a live bank's Page keeps the subscription it made
            page["subscribed_fields"] = integration.subscribed_fields
        answer = http.post("/sandbox/api/pages", json=page)
        if answer.status_code not in {200, 201}:
            raise SeedError(f"The sandbox refused the Page: {answer.text[:300]}")
        say(f"Registered the Page in the sandbox, webhook {webhook}.")
    verified = http.post(f"/sandbox/api/pages/{integration.page_id}/verify-webhook").json()
    if not verified.get("verified"):
        raise SeedError(f"The sandbox could not verify the webhook at {webhook}: {verified}")


def _live(integration: MessengerIntegration, graph: GraphClient, say) -> None:
    integration.refresh_from_db()
    if integration.status == Status.DRAFT:
        check = services.integration_check(actor=ACTOR, integration=integration, client=graph)
        if not check.ok:
            raise SeedError(f"The sandbox refused the Page credentials: {check.error}")
        integration = check.integration
    if integration.status == Status.VERIFIED:
        services.integration_go_live(actor=ACTOR, integration=integration, client=graph)
        say("Checked the connection with the sandbox; the integration is live.")
    elif integration.status == Status.PAUSED:
        say(f"The integration is paused ({integration.status_reason}); resume it in the portal.")


def _utility_templates(bank: Bank, graph: GraphClient, say) -> None:
    """Register each default-language template as a UTILITY template and wait for review."""
    templates = MessageTemplate.objects.for_bank(bank).filter(locale=bank.default_locale)
    waiting = []
    for template in templates:
        registered = UtilityTemplate.objects.for_bank(bank).filter(
            message_template=template, source_body=template.body
        )
        latest = registered.order_by("-version").first()
        if latest is None:
            outcome = services.utility_template_register(
                actor=ACTOR, template=template, client=graph
            )
            if not outcome.ok:
                raise SeedError(f"The sandbox refused a utility template: {outcome.error}")
            latest = outcome.utility_template
        if latest.status == UtilityTemplate.Status.PENDING:
            waiting.append(latest)
    deadline = time.monotonic() + REVIEW_WAIT_SECONDS
    while waiting and time.monotonic() < deadline:
        time.sleep(1.1)
        for utility in list(waiting):
            outcome = services.utility_template_refresh(
                actor=ACTOR, utility_template=utility, client=graph
            )
            if outcome.ok and outcome.utility_template.status != UtilityTemplate.Status.PENDING:
                waiting.remove(utility)
    if waiting:
        raise SeedError("The sandbox did not finish reviewing the utility templates.")
    approved = UtilityTemplate.objects.for_bank(bank).filter(status=UtilityTemplate.Status.APPROVED)
    say(f"Utility templates approved in the sandbox: {approved.count()}.")


def _staff(bank: Bank, say) -> None:
    User = get_user_model()
    for login in STAFF:
        user = User.objects.filter(username=login.username).first()
        if user is None:
            user = _staff_create(bank, login)
            say(f"Created {login.label} {login.username}.")
        if not StaffTOTPDevice.objects.filter(user=user, confirmed=True).exists():
            device = services.two_factor_device_start(user=user)
            # Enrolled with the previous period's code, so the code shown now still works.
            previous = TOTP(device.bin_key, device.step, device.t0, device.digits)
            previous.time = time.time() - device.step
            if not services.two_factor_device_confirm(
                user=user, device=device, code=f"{previous.token():0{device.digits}d}"
            ):
                raise SeedError(f"Could not enrol an authenticator for {login.username}.")


@transaction.atomic
def _staff_create(bank: Bank, login: StaffLogin):
    if login.role == "platform":
        user = get_user_model().objects.create_superuser(
            username=login.username, email="", password=STAFF_PASSWORD
        )
        services.audit_record(
            actor=ACTOR,
            action="staff.platform_admin_created",
            bank=None,
            target=user,
            details={"user": login.username},
        )
        return user
    invited = services.invitation_create(actor=ACTOR, bank=bank, role=login.role)
    membership = services.invitation_accept(
        token=invited.token, username=login.username, password=STAFF_PASSWORD
    )
    return membership.user


def totp_codes() -> list[TotpCode]:
    """The current code of each demo staff member's authenticator, for the terminal."""
    now = time.time()
    codes = []
    devices = StaffTOTPDevice.objects.filter(
        user__username__in=[s.username for s in STAFF], confirmed=True
    ).select_related("user")
    by_user = {d.user.username: d for d in devices}
    for login in STAFF:
        device = by_user.get(login.username)
        if device is None:
            continue
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
        totp.time = now
        left = device.step - int(now - device.t0) % device.step
        codes.append(
            TotpCode(login.username, login.label, f"{totp.token():0{device.digits}d}", left)
        )
    return codes


def _customers(http: httpx.Client, bank: Bank, api_key: str, say) -> None:
    """The core creates the customers, with demo-directory logins, through its API."""
    headers = {"Authorization": f"Bearer {api_key}"}
    existing = set(
        Customer.objects.for_bank(bank)
        .filter(external_id__in=[c.id for c in SEEDED])
        .values_list("external_id", flat=True)
    )
    for customer in SEEDED:
        if customer.id in existing:
            continue
        answer = http.put(
            f"/api/v1/customers/{customer.id}",
            json=customer.as_api(with_login=True),
            headers=headers,
        )
        if answer.status_code not in {200, 201}:
            raise SeedError(f"The customers API refused {customer.id}: {answer.text[:300]}")
        say(f"Created customer {customer.name} (login {customer.username}).")


def _prelinked(http: httpx.Client, url: str, bank: Bank, integration, say) -> str:
    """Link one customer from the sandbox chat, through the real Log In pages."""
    customer = next(c for c in SEEDED if c.username == PRELINKED_USERNAME)
    done = (
        Consent.objects.for_bank(bank)
        .filter(
            customer__external_id=customer.id,
            status=Consent.Status.AUTHORISED,
            page_id=integration.page_id,
        )
        .exclude(psid="")
        .first()
    )
    if done is not None:
        return done.psid
    page = integration.page_id
    users = http.get(f"/sandbox/api/pages/{page}/users").json()["users"]
    user = next((u for u in users if u["name"] == customer.name), None)
    if user is None:
        user = http.post(
            f"/sandbox/api/pages/{page}/users",
            json={"name": customer.name, "locale": customer.locale},
        ).json()
    psid = user["psid"]
    http.post(f"/sandbox/api/pages/{page}/users/{psid}/messages", json={"text": "Hello!"})
    started = http.post(
        f"/sandbox/api/pages/{page}/users/{psid}/link",
        json={"url": url + reverse("linking:start", args=[bank.slug])},
    ).json()
    _log_in_and_allow(started["location"], customer)
    deadline = time.monotonic() + LINK_WAIT_SECONDS
    while time.monotonic() < deadline:
        if (
            Consent.objects.for_bank(bank)
            .filter(psid=psid, status=Consent.Status.AUTHORISED)
            .exists()
        ):
            say(f"Linked {customer.name} from the sandbox chat (PSID {psid}).")
            return psid
        time.sleep(0.2)
    raise SeedError(f"The sandbox's account_linking webhook never linked {customer.name}.")


def _log_in_and_allow(location: str, customer: DemoCustomer) -> None:
    """What the customer's browser does: sign in, tick everything, Allow."""
    with httpx.Client(timeout=20, follow_redirects=True) as browser:
        login = browser.get(location)
        consent = _submit(
            browser,
            login,
            {"username": customer.username, "password": CUSTOMER_PASSWORD},
        )
        accounts = ACCOUNT_VALUE.findall(consent.text)
        if not accounts:
            raise SeedError(f"The consent screen for {customer.name} lists no accounts.")
        finished = _submit(
            browser,
            consent,
            {"accounts": accounts, "scopes": list(Consent.Scope.values), "decision": "allow"},
        )
        if finished.status_code != 200:
            raise SeedError(f"Linking {customer.name} ended with {finished.status_code}.")


def _submit(browser: httpx.Client, page: httpx.Response, data: dict) -> httpx.Response:
    token = CSRF.search(page.text)
    if page.status_code != 200 or token is None:
        raise SeedError(f"Expected a form at {page.url}, got {page.status_code}.")
    return browser.post(str(page.url), data={"csrfmiddlewaretoken": token.group(1), **data})
