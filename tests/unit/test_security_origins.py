"""Origins are scheme, host and port: another port of our host name is another server."""

from __future__ import annotations

from federation.origins import origin_of, same_origin
from federation.urls import Urls


def test_an_origin_is_scheme_host_and_port() -> None:
    assert origin_of("https://A.example/x") == ("https", "a.example", 443)
    assert origin_of("http://a.example:8080/") == ("http", "a.example", 8080)
    assert same_origin("https://a.example/x", "https://a.example:443/y")
    assert same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b")
    # Another port, another scheme: another origin
    assert not same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:9090/a")
    assert not same_origin("http://a.example/a", "https://a.example/a")
    # Not http(s), or not a URL: never the same as anything
    assert not same_origin("javascript://a.example/%0Aalert(1)", "javascript://a.example/")
    assert origin_of("http://[::1") is None and origin_of(None) is None


def test_ours_means_our_origin() -> None:
    urls = Urls("http://127.0.0.1:8080")
    assert urls.is_local("http://127.0.0.1:8080/users/coop")
    assert urls.is_local("http://127.0.0.1:8080")
    assert not urls.is_local("http://127.0.0.1:9090/objects/1")
    assert not urls.is_local("http://127.0.0.1:80801/objects/1")
    assert not urls.is_local("https://127.0.0.1:8080/objects/1")
