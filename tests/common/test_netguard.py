"""Outbound requests to users' URLs never reach this network's own hosts in production."""

from __future__ import annotations

import pytest

from common.netguard import BlockedTarget, check_public_url
from reporting.forms import ForwardingForm


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://0.0.0.0/",
        "https://localhost/hook",
    ],
)
def test_it_refuses_private_and_loopback_targets_in_production(settings, url):
    settings.MAILROOM_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(BlockedTarget):
        check_public_url(url)


def test_it_accepts_a_public_address(settings):
    settings.MAILROOM_ALLOW_PRIVATE_TARGETS = False
    check_public_url("https://93.184.215.14/hook")


def test_development_and_tests_may_forward_to_loopback(settings):
    settings.MAILROOM_ALLOW_PRIVATE_TARGETS = True
    check_public_url("http://127.0.0.1:9/hook")


def test_the_forwarding_form_says_why_a_private_url_is_refused(settings):
    settings.MAILROOM_ALLOW_PRIVATE_TARGETS = False
    form = ForwardingForm({"forward_url": "http://10.0.0.5/inbound"})
    assert not form.is_valid()
    assert "10.0.0.5" in form.errors["forward_url"][0]
    assert "not a public address" in form.errors["forward_url"][0]
