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
CHAIN_ID_CHARS_MAX: Final = 48  # [A-Za-z0-9.-]: fits signing prefixes and voucher QR codes
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
# TX_BYTES_MAX, BLOCK_TXS_MAX and BLOCK_BYTES_MAX are also the most a genesis may set.
BLOCK_TXS_MAX: Final = 2_000
BLOCK_BYTES_MAX: Final = 4 * 1024 * 1024
VALIDATORS_MAX: Final = 64
VALIDATOR_POWER_MAX: Final = 1_000_000
EVIDENCE_AGE_MAX_BLOCKS: Final = 100_000  # older double signatures are no longer accepted
GOVERNANCE_DELAY_MIN_BLOCKS: Final = 2  # a validator change takes effect this far ahead, or more
GOVERNANCE_DELAY_MAX_BLOCKS: Final = 100_000
STATE_TREE_LEVELS: Final = 4  # 16-ary levels above the buckets: 16**4 = 65 536 buckets

# --- node: network ----------------------------------------------------------
FRAME_BYTES_MAX: Final = BLOCK_BYTES_MAX + 64 * 1024
PEER_SEND_QUEUE_MAX: Final = 1_024
CONSENSUS_QUEUE_MAX: Final = 10_000

# --- node: mempool ----------------------------------------------------------
MEMPOOL_TXS_MAX: Final = 20_000
MEMPOOL_BYTES_MAX: Final = 64 * 1024 * 1024
GOSSIP_ADMISSION_BATCH_TXS_MAX: Final = 500  # gossiped txs whose signatures are checked at once
GOSSIP_FRAME_TXS_MAX: Final = 500  # transactions gossiped in one frame
GOSSIP_FRAME_BYTES_MAX: Final = 1024 * 1024  # ... and their bytes, at most (over one tx's cap)
DECODED_TXS_MAX: Final = 2 * MEMPOOL_TXS_MAX  # transactions kept decoded on their way through
DECODED_TX_BYTES_MAX: Final = 32 * 1024 * 1024  # ... and their encoded bytes, at most

# --- node: state --------------------------------------------------------------
RECORD_CACHE_MAX: Final = 250_000  # decoded committed records shared across blocks

# --- node: HTTP -------------------------------------------------------------
HTTP_BODY_BYTES_MAX: Final = 2 * 1024 * 1024
HTTP_PAGE_ITEMS_MAX: Final = 500
HTTP_REQUESTS_PER_CLIENT_PER_S_MAX: Final = 50
HTTP_BURST_REQUESTS_MAX: Final = (
    100  # a client's bucket: bursts up to this, refilled at the rate above
)
HTTP_RATE_CLIENTS_MAX: Final = (
    10_000  # clients tracked by the rate limiter (oldest forgotten first)
)
HTTP_SUBMIT_BATCH_TXS_MAX: Final = 1_000
HTTP_COMMIT_WAIT_MAX_MS: Final = 30_000  # ?wait=true gives up after this
HTTP_SCAN_ITEMS_MAX: Final = 20_000  # entries one list request may read before it returns a cursor
HTTP_STREAM_SUBSCRIBERS_MAX: Final = 256
HTTP_STREAM_QUEUE_EVENTS_MAX: Final = 1_000  # a slower reader is disconnected
HTTP_CSV_ROWS_MAX: Final = 100_000
HTTP_BLOCKS_CACHED_MAX: Final = 32  # decoded blocks kept for history pages
UI_MERCHANTS_PER_PAGE: Final = 100  # a commune's merchants on its dashboard, a page
UI_PAYOUTS_SHOWN: Final = 100  # a merchant's newest payouts on its dashboard
UI_PAYOUT_SCAN_MAX: Final = 5_000  # of its transactions read to find them
LIGHT_CLIENT_ERA_PAGES_MAX: Final = 1_000  # pages of validator sets a wallet reads, at most
INDEX_WIPE_BATCH_KEYS: Final = 10_000  # history index keys deleted a batch on a layout change

# --- node: heavy requests, off the event loop (node/api/offload.py) -----------
OFFLOAD_PROCESSES_MAX: Final = 4  # worker processes computing and rendering: one per other core
OFFLOAD_THREADS: Final = 2  # threads reading the store for them
OFFLOAD_JOBS_MAX: Final = 6  # heavy requests admitted at once (running or waiting); then 503
OFFLOAD_RETRY_AFTER_S: Final = 2  # what a refused heavy request is told to wait
OFFLOAD_NICE: Final = 10  # the workers' niceness: the node's own loop comes first
OFFLOAD_SNAPSHOT_BYTES_MAX: Final = 512 * 1024 * 1024  # blocks and records one job may read
HTTP_RESULT_LAG_BLOCKS_MAX: Final = 10  # a statement or report served again until this old
HTTP_STREAM_CHUNK_BYTES: Final = 64 * 1024  # a streamed answer's writes
HTTP_EXPORT_PAGE_ITEMS: Final = 100  # history rows read between two writes of a CSV export

# --- node: API tokens and balance codes -------------------------------------
API_TOKEN_TTL_MAX_MS: Final = 8 * 3_600_000  # a login lasts a working day at most
API_TOKEN_CHARS_MAX: Final = 512
API_TOKEN_CLOCK_SKEW_MS: Final = 60_000  # a token may be issued this far in our future
API_LOGINS_REMEMBERED_MAX: Final = 10_000  # one-time login links already used
BALANCE_CODE_TTL_MAX_MS: Final = 2 * 366 * 86_400_000  # a paper letter's code: two years at most
BALANCE_CODE_CHARS_MAX: Final = 256
