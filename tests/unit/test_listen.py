"""Binding jobd's addresses before anything else: an API port and a metrics port that would
clash are refused in one line; IPv4 and IPv6 sockets never clash."""

from __future__ import annotations

import pytest

from provena_jobd import listen
from provena_jobd.errors import ConfigError


def test_a_second_address_on_the_api_s_port_is_refused_and_closed() -> None:
    api = listen.bind("0.0.0.0", 0)
    port = api.getsockname()[1]
    other = listen.bind("127.0.0.1", port)  # only bound: SO_REUSEADDR lets it pass
    try:
        with pytest.raises(ConfigError, match="jobd serves its API on that port"):
            listen.refuse_overlap(api, other, f"listen for metrics on 127.0.0.1:{port}")
        assert other.fileno() == -1  # closed
    finally:
        other.close()
        api.close()


def test_ipv6_and_ipv4_on_one_port_or_two_ipv4_hosts_do_not_clash() -> None:
    for api_host, host in (("0.0.0.0", "::"), ("127.0.0.1", "127.0.0.2")):
        api = listen.bind(api_host, 0)
        other = listen.bind(host, api.getsockname()[1])
        try:
            listen.refuse_overlap(api, other, "listen for metrics")  # no error
        finally:
            other.close()
            api.close()
