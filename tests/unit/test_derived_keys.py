"""Keys derived for one purpose (Keystone tokens) from ``LBAAS_SECRET_KEYS``: what the keys
of one purpose seal, those of another do not open, and they rotate with the keys they are
made from."""

import pytest
from pydantic import SecretStr

from api_service.secret_keys import SecretKeys, Unsealable, new_key


def _keys(*values: str) -> SecretKeys:
    return SecretKeys([SecretStr(value) for value in values])


def test_purposes_do_not_open_each_other() -> None:
    keys = _keys(new_key())
    tokens = keys.derived("keystone token")
    with pytest.raises(Unsealable):
        tokens.open(keys.seal("an outbox payload"))
    with pytest.raises(Unsealable):
        keys.open(tokens.seal("a keystone token"))
    with pytest.raises(Unsealable):
        keys.derived("another purpose").open(tokens.seal("a keystone token"))
    assert tokens.open(tokens.seal("a keystone token")) == "a keystone token"


def test_derived_keys_rotate_with_their_keys() -> None:
    old, new = new_key(), new_key()
    sealed = _keys(old).derived("keystone token").seal("made before the rotation")
    rotated = _keys(new, old).derived("keystone token")
    assert rotated.open(sealed) == "made before the rotation"
    with pytest.raises(Unsealable):
        _keys(new).derived("keystone token").open(sealed)
