"""Test hosts for tests: see nettop/testhosts.py."""

from nettop.testhosts import TestHost, sh, test_host, wait_for_port  # noqa: F401
