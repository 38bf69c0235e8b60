"""``LBAAS_PUBLIC_URL``: the base of the API's absolute links, checked, and its default."""

import pytest
from pydantic import ValidationError

from api_service.secret_keys import new_key
from api_service.settings import ApiSettings


def _settings(**fields: object) -> ApiSettings:
    return ApiSettings(secret_keys=new_key(), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://lb.example.test", "https://lb.example.test"),
        ("https://lb.example.test/", "https://lb.example.test"),
        ("HTTP://lb.example.test:8080/octavia/", "http://lb.example.test:8080/octavia"),
        ("http://[2001:db8::1]:9876", "http://[2001:db8::1]:9876"),
    ],
)
def test_a_public_url_is_the_base_of_links(url: str, base: str) -> None:
    assert _settings(public_url=url).links_base_url == base


@pytest.mark.parametrize(
    ("host", "port", "base"),
    [
        ("127.0.0.1", 9876, "http://127.0.0.1:9876"),
        ("0.0.0.0", 9876, "http://127.0.0.1:9876"),
        ("::", 39876, "http://[::1]:39876"),
        ("::1", 9876, "http://[::1]:9876"),
        ("api.internal", 80, "http://api.internal:80"),
    ],
)
def test_without_one_links_start_with_the_bind_address(host: str, port: int, base: str) -> None:
    assert _settings(host=host, port=port).links_base_url == base


@pytest.mark.parametrize(
    "url",
    [
        "ftp://lb.example.test",
        "lb.example.test",
        "https://",
        "https://lb.example.test?",
        "https://lb.example.test/?next=x",
        "https://lb.example.test/#x",
        "https://user:secret@lb.example.test",
        "https://lb.example.test:65536",
        "https://lb.example.test/a b",
        "https://lb.example.test/\x00",
    ],
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(public_url=url)
    assert [error["loc"] for error in refused.value.errors()] == [("public_url",)]
