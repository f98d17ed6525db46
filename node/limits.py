"""Every cap of the system, in one place. Units come last in each name.

Protocol limits (those that decide whether a transaction or block is valid)
are copied into the genesis document so that every node agrees on them;
the values here are the defaults a new genesis takes. Node-local limits
(queues, HTTP) only protect one process.

Imports nothing of the project.
"""

from __future__ import annotations

from typing import Final

# --- protocol: money --------------------------------------------------------
AMOUNT_MAX_CENTS: Final = 100_000_000  # one transaction moves at most 1 000 000 EUR
BALANCE_MAX_CENTS: Final = 10**15  # no balance, budget or escrow may exceed this

# --- protocol: transactions -------------------------------------------------
TX_BYTES_MAX: Final = 256 * 1024
ALLOCATIONS_PER_TX_MAX: Final = 5_000
NAME_CHARS_MAX: Final = 120
CODE_CHARS_MAX: Final = 32  # campaign codes, zone codes, NACE categories
MEMO_CHARS_MAX: Final = 140
REFERENCE_CHARS_MAX: Final = 64  # the bank's references
ZONES_PER_ISSUER_MAX: Final = 256
ZONES_PER_CAMPAIGN_MAX: Final = 256
CATEGORIES_PER_CAMPAIGN_MAX: Final = 64
SETTLEMENTS_PER_TX_MAX: Final = 1_000
BALANCE_ROWS_PER_ACCOUNT_MAX: Final = 64  # campaigns a holder key may hold at once

# --- protocol: blocks -------------------------------------------------------
BLOCK_TXS_MAX: Final = 2_000
BLOCK_BYTES_MAX: Final = 4 * 1024 * 1024
VALIDATORS_MAX: Final = 64
STATE_TREE_LEVELS: Final = 4  # 16-ary levels above the buckets: 16**4 = 65 536 buckets

# --- node: network ----------------------------------------------------------
FRAME_BYTES_MAX: Final = BLOCK_BYTES_MAX + 64 * 1024
PEER_SEND_QUEUE_MAX: Final = 1_024
CONSENSUS_QUEUE_MAX: Final = 10_000

# --- node: mempool ----------------------------------------------------------
MEMPOOL_TXS_MAX: Final = 20_000
MEMPOOL_BYTES_MAX: Final = 64 * 1024 * 1024

# --- node: HTTP -------------------------------------------------------------
HTTP_BODY_BYTES_MAX: Final = 2 * 1024 * 1024
HTTP_PAGE_ITEMS_MAX: Final = 500
HTTP_REQUESTS_PER_CLIENT_PER_S_MAX: Final = 50
