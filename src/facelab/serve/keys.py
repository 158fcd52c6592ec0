"""API keys: two roles, stored hashed in ``<data dir>/keys.json``.

* ``read``: recognition (detect, landmarks, embed, verify, analyze, identify) and
  reading the gallery;
* ``admin``: everything, including enrolling, renaming and deleting people.

A key looks like ``flk_<id>_<secret>``; it is shown once, when created
(``facelab keys create --role read``).  The file keeps only its id, name, role
and SHA-256 (the secret is 256 random bits, so a fast hash is enough: nothing
to brute-force).  The server re-reads the file when it changes, so keys created
or revoked while it runs take effect at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

ROLES = ("read", "admin")
PREFIX = "flk"
FORMAT = "facelab-keys"


@dataclass
class ApiKey:
    """One stored key (never the secret itself)."""

    id: str
    name: str
    role: str
    hash: str
    created: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "created": self.created}

    def allows(self, role: str) -> bool:
        """Admin keys may do everything; read keys only ``read`` work."""
        return self.role == "admin" or role == self.role


def _digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    """The id part of ``flk_<id>_<secret>``, or None when the text is not shaped like a key."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


class KeyStore:
    """The keys file of a data folder (thread-safe; safe against concurrent ``keys create`` processes)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None

    # --- reading ---------------------------------------------------------------------

    def _read(self) -> dict[str, ApiKey]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the API keys file ({e})", source=str(self.path)) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f'not a facelab keys file (no "format": "{FORMAT}")', source=str(self.path))
        try:
            return {k["id"]: ApiKey(**k) for k in doc.get("keys", [])}
        except TypeError as e:
            raise InputError(f"damaged keys file ({e})", source=str(self.path)) from None

    def _current(self) -> dict[str, ApiKey]:
        """The keys, re-read when the file changed (size or mtime)."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._keys = self._read() if stamp is not None else {}
                self._stamp = stamp
            return self._keys

    def list(self) -> list[ApiKey]:
        return sorted(self._current().values(), key=lambda k: k.created)

    def __len__(self) -> int:
        return len(self._current())

    def verify(self, key: str | None) -> ApiKey | None:
        """The stored key matching ``key`` (constant-time comparison), or None."""
        if not key:
            return None
        kid = _split(key)
        if kid is None:
            return None
        rec = self._current().get(kid)
        if rec is None:
            hmac.compare_digest(_digest(key), _digest(key))  # same work for unknown ids
            return None
        return rec if hmac.compare_digest(rec.hash, _digest(key)) else None

    # --- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        """Read-modify-write under an exclusive file lock; written atomically, mode 0600."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError as e:
            raise InputError(f"cannot write in the data folder ({e.strerror or e})", source=str(self.path.parent)) from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            doc = {"format": FORMAT, "version": 1, "keys": [asdict(k) for k in keys.values()]}
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def create(self, role: str, name: str = "") -> tuple[str, ApiKey]:
        """A new key of ``role``: returns ``(the key, its record)``; the key is not stored and cannot be shown again."""
        if role not in ROLES:
            raise InputError(f"unknown role {role!r} (choose from: {', '.join(ROLES)})")
        name = (name or "").strip()
        if len(name) > 100 or any(c in name for c in "\n\r\t\0"):
            raise InputError("a key's name has at most 100 characters and no control characters")
        with self._locked() as keys:
            kid = secrets.token_hex(4)
            while kid in keys:
                kid = secrets.token_hex(4)
            key = f"{PREFIX}_{kid}_{secrets.token_urlsafe(32)}"
            rec = ApiKey(kid, name or f"{role} key", role, _digest(key), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            keys[kid] = rec
        return key, rec

    def revoke(self, key_id: str) -> ApiKey:
        """Delete a key by its id (the ``<id>`` in ``flk_<id>_...``)."""
        with self._locked() as keys:
            rec = keys.pop(key_id, None)
            if rec is None:
                raise InputError(f"no API key with id {key_id!r} (facelab keys list shows them)", source=str(self.path))
        return rec


__all__ = ["ROLES", "ApiKey", "KeyStore"]
