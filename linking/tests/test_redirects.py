import pytest

from linking.redirects import UnsafeRedirect, check_redirect_uri, with_params

MESSENGER = "https://www.facebook.com/messenger_platform/account_linking?account_linking_token=T"


@pytest.mark.parametrize(
    "uri",
    [
        MESSENGER,
        "https://www.facebook.com/messenger_platform/account_linking/?account_linking_token=T",
        "https://m.facebook.com/messenger_platform/account_linking",
        "https://facebook.com/messenger_platform/account_linking?account_linking_token=T",
        "https://www.messenger.com/messenger_platform/account_linking?account_linking_token=T",
        "http://127.0.0.1:8000/sandbox/link/done?account_linking_token=T",
        "http://localhost:8000/sandbox/link/done?account_linking_token=T",
    ],
)
def test_messenger_s_account_linking_path_is_accepted(uri):
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/account_linking",
        "https://facebook.com.evil.example/",
        "https://evilfacebook.com/",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "https://www.facebook.com@evil.example/",
        "https://user:pass@www.facebook.com/",
        "https://www.facebook%2Ecom/",
        "https://evil.example%2F@www.facebook.com/",
        "https://www.facebook.com\\@evil.example/",
        "https:\\\\evil.example",
        "http://www.facebook.com/account_linking",
        "https://www.facebook.com /x",
        "https://www.facebook.com\t.evil.example/",
        "",
        "https:///nohost",
    ],
)
def test_everything_else_is_refused(uri):
    with pytest.raises(UnsafeRedirect):
        check_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        # Facebook's open redirector: any allowed host's other paths could lead anywhere.
        "https://www.facebook.com/l.php?u=https%3A%2F%2Fevil.example%2F&h=AT0",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fevil.example%2F",
        "https://m.facebook.com/l.php?u=https://evil.example/",
        "https://www.facebook.com/",
        "https://www.facebook.com/messenger_platform",
        "https://www.facebook.com/messenger_platform/account_linking/../../l.php?u=x",
        "https://www.facebook.com/messenger_platform/account_linking/x",
        "https://www.facebook.com/messenger_platform/account_linkingx",
        "https://www.facebook.com/messenger_platform/account_linking//",
        "https://www.facebook.com//messenger_platform/account_linking",
        "https://www.facebook.com/messenger_platform/%61ccount_linking",
        "https://www.facebook.com/messenger_platform%2Faccount_linking",
        "https://www.facebook.com/messenger_platform/account_linking;x=1",
        "https://www.facebook.com/MESSENGER_PLATFORM/ACCOUNT_LINKING",
        "https://www.messenger.com/account_linking?x=1",
        # lookalike and odd hosts, ports and shapes
        "https://www.facebook.com.evil.example/messenger_platform/account_linking",
        "https://evil-facebook.com/messenger_platform/account_linking",
        "https://www.faceb00k.com/messenger_platform/account_linking",
        "https://xn--facebok-y0a.com/messenger_platform/account_linking",
        "https://www.facebook.com./messenger_platform/account_linking",
        "https://www.facebook.com:8443/messenger_platform/account_linking",
        "https://www.facebook.com:443/messenger_platform/account_linking",
        "https://www.facebook.com:/messenger_platform/account_linking",
        "https://@www.facebook.com/messenger_platform/account_linking",
        "https://www.facebook.com/messenger_platform/account_linking#@evil.example",
        "https://www.facebook.com\\messenger_platform/account_linking",
        "https://www.facebook.com/messenger_platform\\account_linking",
        "https://www.facebook.com/messenger_platform/account_linking%5C..%5Cl.php",
        "HTTPS://www.facebook.com/messenger_platform/account_linking",
        # the sandbox's path is for the loopback sandbox only
        "https://www.facebook.com/sandbox/link/done",
        "http://127.0.0.1:8000/l.php?u=https://evil.example/",
        "http://127.0.0.1:8000/sandbox/link/done/../../admin/",
    ],
)
def test_other_paths_and_lookalike_hosts_are_refused(uri):
    with pytest.raises(UnsafeRedirect):
        check_redirect_uri(uri)


def test_the_sandbox_path_is_refused_without_the_sandbox(settings):
    settings.SANDBOX_ENABLED = False

    with pytest.raises(UnsafeRedirect):
        check_redirect_uri("https://www.facebook.com/sandbox/link/done")


def test_loopback_http_is_refused_without_the_sandbox(settings):
    settings.SANDBOX_ENABLED = False

    with pytest.raises(UnsafeRedirect):
        check_redirect_uri("http://127.0.0.1:8000/sandbox/link/done")


def test_the_code_is_appended_to_an_existing_query_string():
    assert with_params(MESSENGER, {"authorization_code": "a b"}) == (
        MESSENGER + "&authorization_code=a+b"
    )
    assert with_params("https://www.messenger.com/x", {"authorization_code": "c"}) == (
        "https://www.messenger.com/x?authorization_code=c"
    )


@pytest.mark.django_db
def test_a_log_in_sending_the_code_through_facebook_s_open_redirector_is_refused(client):
    """The attacker's Log In link: Allow would have sent the code on to evil.example."""
    from linking.models import Consent
    from linking.tests.factories import IntegrationFactory

    IntegrationFactory(bank__slug="harbour")
    open_redirect = "https://www.facebook.com/l.php?u=https%3A%2F%2Fevil.example%2Fsteal"

    response = client.get(
        "/link/harbour/", {"account_linking_token": "T", "redirect_uri": open_redirect}
    )

    assert response.status_code == 400
    assert "did not come from Messenger" in response.content.decode()
    assert "link_flow" not in client.session
    assert client.get("/link/harbour/consent").status_code == 400
    assert not Consent.objects.exists()
