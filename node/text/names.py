"""What the ledger accepts as a name: merchants, campaigns, issuers and territories, validators.

A name is text a person chose; it ends up on dashboards, statements, letters,
CSV files, bank transfers (pain.001) and the screens of other communes. The
rule (``is_name``), decided once and applied by the ledger (``node.ledger.rules``,
result code ``INVALID_NAME``), the genesis file, governance proposals and the
wallet before it signs:

- Unicode in NFC normalised form (``é`` is one code point, so one name has one
  spelling and one hash);
- no leading or trailing white space, not empty;
- no control (Cc), format (Cf: the bidirectional marks, embeddings, overrides
  and isolates U+061C, U+200E/F, U+202A-E, U+2066-9, zero-width characters),
  line or paragraph separator (Zl, Zp), surrogate (Cs), private-use (Co) or
  unassigned (Cn) character;
- at most ``NAME_CHARS_MAX`` characters and ``NAME_BYTES_MAX`` bytes of UTF-8.

Whether a name is valid depends on the Unicode database (categories and NFC
of newly assigned characters): it is part of the protocol. ``UNICODE_VERSION``
is the one every node must run (Python 3.11's); unassigned characters are
refused so that a node with a newer database cannot accept what an older one
refuses for a character the older one does not know.

Every other format escapes or transliterates names where it writes them
(``node.text.escape`` for CSV and PDF markup, ``node.settlement.pain001`` for SEPA).

Imports nothing of the project but ``node.protocol.limits``.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from node.protocol import limits

UNICODE_VERSION: Final = "14.0.0"  # unicodedata.unidata_version of Python 3.11
REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unicode_problem(version: str = unicodedata.unidata_version) -> str | None:
    """Why this interpreter may not run a node (its Unicode database is not the
    protocol's), in words for an operator; None if it may."""
    if version == UNICODE_VERSION:
        return None
    return (
        f"this Python's Unicode database is {version}; the ledger's name rule is defined on "
        f"Unicode {UNICODE_VERSION} (Python 3.11): run the node with Python 3.11, or it could "
        "disagree with the others on which names are valid"
    )


def is_name(text: str) -> bool:
    """Whether ``text`` is a valid name (see the module docstring)."""
    return name_problem(text) is None


def name_problem(text: str) -> str | None:
    """Why ``text`` is not a valid name, in words for a person; None if it is one."""
    if not text.strip():
        return "a name may not be empty"
    if len(text) > limits.NAME_CHARS_MAX:
        return f"a name has at most {limits.NAME_CHARS_MAX} characters"
    if len(text.encode("utf-8", "surrogatepass")) > limits.NAME_BYTES_MAX:
        return f"a name has at most {limits.NAME_BYTES_MAX} bytes of UTF-8"
    if text != text.strip():
        return "a name may not start or end with white space"
    for c in text:
        if unicodedata.category(c) in REFUSED_CATEGORIES:
            return f"a name may not hold the character U+{ord(c):04X} (control, format or bidi)"
    if not unicodedata.is_normalized("NFC", text):
        return "a name must be in Unicode NFC form"
    return None
