"""Peer messages: sealed with the peer password, readable only with it, decompressed as before."""
import zlib

import pytest
from cryptography.exceptions import InvalidTag

from etcdnode.peerwire import Sealer, store_uncompressed


def test_a_sealed_message_opens_with_the_same_password_only():
    a, b = Sealer("secret"), Sealer("secret")
    token = a.encrypt_at_time(b"append_entries", 1234)
    assert b"append_entries" not in token
    assert b.extract_timestamp(token) == 1234 and b.decrypt(token) == b"append_entries"
    with pytest.raises(InvalidTag):
        Sealer("other").decrypt(token)


def test_a_tampered_message_or_timestamp_is_refused():
    s = Sealer("secret")
    token = bytearray(s.encrypt_at_time(b"next_node_idx", 7))
    for pos in (0, len(token) - 1):     # the timestamp (authenticated) and the sealed body
        bad = bytearray(token)
        bad[pos] ^= 1
        with pytest.raises(InvalidTag):
            s.decrypt(bytes(bad))


def test_uncompressed_messages_are_still_zlib():
    data = b"x" * 100_000 + bytes(range(256))
    assert zlib.decompress(store_uncompressed(data, 3)) == data
