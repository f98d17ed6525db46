"""A credential speaks for the account its key signs for (``node.api.access.speaks_for``).

After governance moves Namur's signing key (``rotate_key``), a token or session of the
new key reads as Namur from the height on; one of Namur's old key is refused (401,
``key-rotated``), and the new key before its height too (``key-not-yet-in-force``)."""

from __future__ import annotations

import pytest

from node.api.access import speaks_for
from node.api.problems import ApiError
from tests.ledger.conftest import fresh_scene, rotation
from tests.ledger.world import signer

NEXT = signer("namur-next")


def test_a_moved_key_reads_as_its_account_and_the_old_one_is_refused() -> None:
    s = fresh_scene()
    at = s.w.next_height + 2
    s.do(s.v0, rotation(s.namur, NEXT, at, s.v0, s.v1, s.v2))
    view = s.w.view
    assert speaks_for(view, s.namur.public_key, at - 1) == s.namur.public_key
    assert speaks_for(view, NEXT.public_key, at) == s.namur.public_key
    assert speaks_for(view, s.liege.public_key, at) == s.liege.public_key  # not rotated
    with pytest.raises(ApiError) as old:
        speaks_for(view, s.namur.public_key, at)
    assert old.value.status == 401 and old.value.slug == "key-rotated"
    with pytest.raises(ApiError) as early:
        speaks_for(view, NEXT.public_key, at - 1)
    assert early.value.slug == "key-not-yet-in-force"
