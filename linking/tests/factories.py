import factory

from linking.models import Account, Customer
from portal.models import MessengerIntegration
from portal.tests.factories import BankFactory


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessengerIntegration

    bank = factory.SubFactory(BankFactory)
    page_id = factory.Sequence(lambda n: f"{1029384756 + n}")
    page_access_token = factory.Sequence(lambda n: f"EAApage-token-{n}")
    app_secret = factory.Sequence(lambda n: f"app-secret-{n}-0123456789")
    verify_token = "verify-me"
    status = MessengerIntegration.Status.LIVE


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    bank = factory.SubFactory(BankFactory)
    external_id = factory.Sequence(lambda n: f"cust-{n}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    directory_username = factory.Sequence(lambda n: f"customer{n}")
    directory_password = factory.django.Password("open sesame 42")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    customer = factory.SubFactory(CustomerFactory)
    bank = factory.SelfAttribute("customer.bank")
    external_id = factory.Sequence(lambda n: f"acc-{n}")
    kind = Account.Kind.CHECKING
    name = "Everyday account"
    last4 = "4821"
    currency = "EUR"
    balance = "1204.50"
