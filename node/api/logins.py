"""Dashboard logins: a login link is exchanged once for a random session id.

``/ui/login`` takes a login link (or an API token pasted in its form), checks it,
and gives the browser a fresh random session id (the ``relance_session`` cookie)
in exchange. From then on the link is spent: the node refuses it at
``/ui/login`` again, and refuses it as a Bearer token. The cookie is the session
id only, never a token.

Both records live in the node's LevelDB, in its node-local table (``l/``, which
the ledger never reads and the state root never covers), so a restart neither
forgets a spent link nor logs anyone out:

- ``login/<expires_ms u64><token id>`` -> ``[account, session hash]``: the spent
  link, kept until the link itself expires (then it is refused as expired anyway),
  so the set is bounded by the links' expiry, and nothing an attacker does evicts
  an entry early;
- ``session/<sha256(session id)>`` -> ``[account, expires_ms]``: the session, which
  ends when its link would have expired, or at logout. Only the hash of the id is
  stored.

Caps (``node.protocol.limits``): links spent in all and per account, within their expiry.
Past a cap a login is refused (fail closed), never by forgetting an older link.
"""

from __future__ import annotations

import enum
import secrets
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final, Protocol

from node.api.tokens import Login, unb64url
from node.protocol import codec, limits
from node.protocol.codec import DecodeError
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey, digest

_LOGIN: Final = b"login/"
_SESSION: Final = b"session/"
_EXPIRES: Final = struct.Struct(">Q")
SESSION_ID_BYTES: Final = 32
_SESSION_ID_CHARS: Final = 43  # base64url of 32 bytes, no padding


class LocalStore(Protocol):
    """The node-local table of the node's store (``BlockStore.local_*``)."""

    def local_get(self, key: bytes) -> bytes | None: ...

    def local_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def local_write(self, puts: Mapping[bytes, bytes], deletes: Sequence[bytes] = ()) -> None: ...


class Refusal(enum.Enum):
    """Why a login is refused. The values are what the login page says."""

    SPENT = "this login link was already used: log in again with the wallet"
    ACCOUNT_FULL = "this account logged in too many times today: use an open session"
    FULL = "the node takes no more logins for now: retry later"


class Logins:
    """Spent login links and open sessions (on the node's loop only)."""

    def __init__(self, store: LocalStore, clock_ms: Callable[[], int]) -> None:
        self._store = store
        self._clock_ms = clock_ms
        self._by_account: Counter[bytes] = Counter()
        self._count = -1  # counted from the store at the first login (not at start-up)

    def __len__(self) -> int:
        self._load()
        return self._count

    def spent_by(self, account: bytes) -> int:
        """How many links ``account`` has spent that have not expired yet."""
        self._load()
        return self._by_account[account]

    def _load(self) -> None:
        if self._count >= 0:
            return
        self._count = 0
        for _, value in self._store.local_items(_LOGIN):
            self._count += 1
            self._by_account[_record(value)[0]] += 1

    def spent(self, login: Login) -> bool:
        """Whether this link (or token) was already exchanged for a session."""
        return self._store.local_get(_login_key(login)) is not None

    def exchange(self, login: Login) -> str | Refusal:
        """A new session id for a link not spent yet, or why not. Spends the link."""
        self.prune()
        key = _login_key(login)
        if self._store.local_get(key) is not None:
            return Refusal.SPENT
        if self._by_account[login.account] >= limits.API_LOGINS_PER_ACCOUNT_MAX:
            return Refusal.ACCOUNT_FULL
        if self._count >= limits.API_LOGINS_REMEMBERED_MAX:
            return Refusal.FULL
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        hashed = digest(session_id.encode("ascii"))
        self._store.local_write(
            {
                key: codec.encode([bytes(login.account), hashed]),
                _SESSION + hashed: codec.encode([bytes(login.account), login.expires_ms]),
            }
        )
        self._count += 1
        self._by_account[login.account] += 1
        return session_id

    def session(self, session_id: str) -> PublicKey | None:
        """The account of an open session, or None (unknown, malformed, ended or expired)."""
        key = _session_key(session_id)
        raw = None if key is None else self._store.local_get(key)
        if raw is None:
            return None
        try:
            items = codec.as_list(codec.decode(raw, 128), 2)
            account = codec.as_bytes(items[0], PUBLIC_KEY_BYTES)
            expires_ms = codec.as_int(items[1], 0, 2**63 - 1)
        except DecodeError:
            return None
        return PublicKey(account) if self._clock_ms() < expires_ms else None

    def end(self, session_id: str) -> None:
        """Log out: the session ends now (its link stays spent)."""
        key = _session_key(session_id)
        if key is not None and self._store.local_get(key) is not None:
            self._store.local_write({}, [key])

    def prune(self) -> None:
        """Forget links that have expired (and their sessions): they are refused as
        expired from now on, so remembering them protects nothing."""
        self._load()
        now = self._clock_ms()
        deletes: list[bytes] = []
        for key, value in self._store.local_items(_LOGIN):
            (expires_ms,) = _EXPIRES.unpack_from(key, len(_LOGIN))
            if expires_ms > now:
                break
            account, session_hash = _record(value)
            deletes += [key, _SESSION + session_hash]
            self._count -= 1
            self._by_account[account] -= 1
            if self._by_account[account] <= 0:
                del self._by_account[account]
            if len(deletes) >= 2 * limits.API_LOGINS_PRUNED_PER_CALL_MAX:
                break
        if deletes:
            self._store.local_write({}, deletes)


def _login_key(login: Login) -> bytes:
    return _LOGIN + _EXPIRES.pack(login.expires_ms) + login.token_id


def _record(value: bytes) -> tuple[bytes, bytes]:
    """A spent link's record: its account and its session's hash (written by us)."""
    items = codec.as_list(codec.decode(value, 128), 2)
    return codec.as_bytes(items[0], PUBLIC_KEY_BYTES), codec.as_bytes(items[1], 32)


def _session_key(session_id: str) -> bytes | None:
    if len(session_id) != _SESSION_ID_CHARS or unb64url(session_id) is None:
        return None
    return _SESSION + digest(session_id.encode("ascii"))
