"""The environment's password for a CI job on another machine, and for nobody else.

The job makes a key pair for this one run and passes only the public key as the spawn
run's parameter `seal_to`; the flow returns the password sealed to it (libsodium's sealed
box, PyNaCl). Parameters, results, logs and artifacts the Prefect API keeps then hold a
public key and a ciphertext: whoever reads them cannot open it. The private key never
leaves the job's memory. Chosen over a Prefect Secret block per environment because a
block is readable with the CI's API key by every pipeline of every project using it.
"""

from __future__ import annotations

import base64

from nacl.public import PrivateKey, PublicKey, SealedBox

from phoenix.errors import InvalidInput


class KeyPair:
    """One job's key pair: `public` goes to the flow, the private half stays here."""

    def __init__(self) -> None:
        self._key = PrivateKey.generate()

    @property
    def public(self) -> str:
        return base64.b64encode(bytes(self._key.public_key)).decode()

    def open(self, sealed: str) -> str:
        return SealedBox(self._key).decrypt(base64.b64decode(sealed)).decode()

    def __repr__(self) -> str:
        return "<KeyPair: private half in memory>"


def seal(password: str, public_key: str) -> str:
    """The password sealed to `public_key` (base64), as the spawn flow returns it."""
    try:
        key = PublicKey(base64.b64decode(public_key, validate=True))
    except Exception:
        raise InvalidInput(
            "seal_to: not a base64 X25519 public key (32 bytes): let `phoenix ci spawn` make it"
        ) from None
    return base64.b64encode(SealedBox(key).encrypt(password.encode())).decode()
