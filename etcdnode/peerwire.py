"""What members send each other: pysyncobj's peer messages, made cheap to encode and to authenticate.

pysyncobj pickles each message, compresses it with zlib level 3 and encrypts it with Fernet (AES-CBC
plus HMAC-SHA256, verified twice on receipt). On a small append_entries or acknowledgement that was
most of a member's work per message (~100 us of zlib set-up, ~80 us of Fernet), paid four times on a
write's critical path. Here messages go as stored zlib (etcd's peers do not compress raft traffic
either) sealed with AES-256-GCM under a key derived from the peer password: still encrypted and
authenticated, and a tampered or foreign message still drops the connection. Members of this version
and of one before it cannot talk to each other (their tokens differ): upgrade all members together.
"""

from __future__ import annotations

import os
import struct
import types
import zlib

import pysyncobj.syncobj
import pysyncobj.tcp_connection
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SALT = b"etcdnode peer messages, AES-256-GCM, v1"
_TIME = struct.Struct(">Q")
_NONCE = 12


def store_uncompressed(data: bytes, level: int = 0) -> bytes:
    """A zlib stream of stored blocks with the smallest window: what pysyncobj's receivers decompress
    anyway, for a few microseconds instead of ~100 (zlib sets up its full window per call)."""
    z = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    return z.compress(data) + z.flush()


class Sealer:
    """pysyncobj's encryptor interface (Fernet's methods it calls) over AES-GCM: a token is the
    timestamp (authenticated, in clear: pysyncobj rejects one older than the last), a random nonce,
    and the sealed message."""

    def __init__(self, password: str | bytes) -> None:
        if isinstance(password, str):
            password = password.encode()
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=SALT, iterations=100_000)
        self.aead = AESGCM(kdf.derive(password))

    def encrypt_at_time(self, data: bytes, at: int) -> bytes:
        head, nonce = _TIME.pack(at), os.urandom(_NONCE)
        return head + nonce + self.aead.encrypt(nonce, data, head)

    def extract_timestamp(self, token: bytes) -> int:
        return _TIME.unpack_from(token)[0]

    def decrypt(self, token: bytes) -> bytes:
        head, nonce = token[:_TIME.size], token[_TIME.size:_TIME.size + _NONCE]
        return self.aead.decrypt(nonce, token[_TIME.size + _NONCE:], head)


def install() -> None:
    """Make the next SyncObj seal its messages with Sealer and send them uncompressed (process-wide)."""
    pysyncobj.syncobj.getEncryptor = Sealer
    pysyncobj.tcp_connection.zlib = types.SimpleNamespace(compress=store_uncompressed, decompress=zlib.decompress)
