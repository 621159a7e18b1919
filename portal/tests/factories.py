import factory
from django.contrib.auth import get_user_model

from portal.models import Bank, StaffMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@bank.example")
    password = factory.django.Password("correct horse battery staple")


class BankFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bank

    name = factory.Sequence(lambda n: f"Harbour Bank {n}")
    slug = factory.Sequence(lambda n: f"harbour-{n}")
    timezone = "Europe/London"
    default_locale = "en"


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    bank = factory.SubFactory(BankFactory)
    role = StaffMembership.Role.OPERATOR
