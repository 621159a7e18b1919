import pytest

from linking.redirects import UnsafeRedirect, check_redirect_uri, with_params

MESSENGER = "https://www.facebook.com/messenger_platform/account_linking?account_linking_token=T"


@pytest.mark.parametrize(
    "uri",
    [
        MESSENGER,
        "https://m.facebook.com/messenger_platform/account_linking",
        "https://www.messenger.com/account_linking?x=1",
        "http://127.0.0.1:8000/sandbox/link/done?account_linking_token=T",
    ],
)
def test_messenger_hosts_are_accepted(uri):
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
