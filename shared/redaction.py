"""What of a driver's error may be shown, and to whom.

A device error is written for operators: it may name the device's hosts, the
paths of its files and, through a careless driver, its credentials. Operators
see it with the credentials blanked (:func:`without_secrets`); the project that
owns the load balancer sees it also without URLs, paths and addresses
(:func:`for_project`).
"""

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from shared.messages import DeviceSpec

HIDDEN = "***"
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S*")
_PATH = re.compile(r"(?<![\w.])(?:/[\w.@%+=:,~-]+){2,}/?")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
_IPV6 = re.compile(r"\[?\b(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}\b\]?(?::\d+)?")


def device_secrets(device: DeviceSpec) -> list[str]:
    """The strings that must never leave the agent: the secret and the URL's credentials."""
    found = [] if device.secret is None else [device.secret.get_secret_value()]
    parts = urlsplit(device.management_url)
    found += [part for part in (parts.username, parts.password) if part]
    return found


def without_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and any URL's ``user:password@`` blanked."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return _USERINFO.sub(HIDDEN + "@", text)


def for_project(text: str, secrets: Iterable[str] = (), hosts: Iterable[str] = ()) -> str:
    """``text`` fit for a project: no secrets, URLs, file paths, addresses or device hosts."""
    text = without_secrets(text, secrets)
    text = _URL.sub("<url>", text)
    text = _PATH.sub("<path>", text)
    text = _IPV6.sub(lambda m: "<address>" if m.group().count(":") >= 2 else m.group(), text)
    text = _IPV4.sub("<address>", text)
    for host in sorted((h for h in hosts if h), key=len, reverse=True):
        text = text.replace(host, "<device>")
    return text
