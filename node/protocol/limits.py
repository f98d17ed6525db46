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
HEIGHT_MAX: Final = 2**62  # block heights: headers, votes, governance, the API's queries
CHAIN_ID_CHARS_MAX: Final = 48  # [A-Za-z0-9.-]: fits signing prefixes and voucher QR codes
TX_BYTES_MAX: Final = 256 * 1024
ALLOCATIONS_PER_TX_MAX: Final = 5_000
NAME_CHARS_MAX: Final = 120
NAME_BYTES_MAX: Final = 240  # ... and its UTF-8 bytes (node/text/names.py says what a name is)
POSTCODE_CHARS_MAX: Final = 12  # a shop's postcode (its street and town are names)
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
AUDITORS_MAX: Final = 64  # auditors a genesis names (each reads every account)
ADDRESS_CHARS_MAX: Final = 255  # a validator's p2p HOST:PORT or API URL in the genesis
MEMBER_FILE_BYTES_MAX: Final = 64 * 1024  # an organisation's genesis membership file
PEERS_FILE_BYTES_MAX: Final = 256 * 1024  # a node home's peers.toml
GENESIS_FILE_BYTES_MAX: Final = 1024 * 1024  # a genesis.toml handed round in the ceremony
PROPOSAL_FILE_BYTES_MAX: Final = 256 * 1024  # a governance proposal handed round for approval
VALIDATOR_POWER_MAX: Final = 1_000_000
EVIDENCE_AGE_MAX_BLOCKS: Final = 100_000  # older double signatures are no longer accepted
GOVERNANCE_DELAY_MIN_BLOCKS: Final = 2  # a validator change takes effect this far ahead, or more
GOVERNANCE_DELAY_MAX_BLOCKS: Final = 100_000

# --- node: network ----------------------------------------------------------
FRAME_BYTES_MAX: Final = BLOCK_BYTES_MAX + 64 * 1024
PEER_SEND_QUEUE_MAX: Final = 1_024
CONSENSUS_QUEUE_MAX: Final = 10_000

# --- node: consensus timeouts (config.toml [timeouts]; a step waits base + round * delta) --
TIMEOUT_PROPOSE_MS: Final = 1_000
TIMEOUT_PROPOSE_DELTA_MS: Final = 500
TIMEOUT_PREVOTE_MS: Final = 500
TIMEOUT_PREVOTE_DELTA_MS: Final = 500
TIMEOUT_PRECOMMIT_MS: Final = 500
TIMEOUT_PRECOMMIT_DELTA_MS: Final = 500
TIMEOUT_COMMIT_MS: Final = 200  # pause after a decision before the next height
TIME_DRIFT_MAX_MS: Final = 10_000  # how far ahead of our clock a proposed block may be
TIMEOUT_MS_MAX: Final = 3_600_000  # the most config.toml may set for any of them
GOSSIP_INTERVAL_MIN_MS: Final = 500  # consensus re-gossips every max(this, propose_ms)

# --- node: p2p handshakes (before the far end is authenticated) -------------
P2P_HANDSHAKE_TIMEOUT_S: Final = 5.0  # a whole handshake, either side
P2P_HELLO_TIMEOUT_S: Final = 1.0  # an inbound connection's first message (sent at once)
P2P_HANDSHAKES_PENDING_MAX: Final = 64  # inbound, from addresses that are no peer's
P2P_HANDSHAKES_PER_ADDRESS_MAX: Final = 4  # ... from one such address
P2P_HANDSHAKES_PER_PEER_MAX: Final = 4  # from a peer's address, per peer there, outside that pool
P2P_PEER_ADDRESSES_PER_HOST_MAX: Final = 8  # addresses kept for one configured peer host
P2P_PEER_RESOLVE_TIMEOUT_S: Final = 5.0  # resolving a configured peer host at start
P2P_REFUSAL_LOG_INTERVAL_S: Final = 10.0  # refused connections: one summary line per interval
P2P_REFUSAL_LOG_ADDRESSES_MAX: Final = 1_000  # distinct addresses counted in one summary

# --- node: mempool ----------------------------------------------------------
MEMPOOL_TXS_MAX: Final = 20_000
MEMPOOL_BYTES_MAX: Final = 64 * 1024 * 1024
MEMPOOL_COMMITTED_KEPT_MAX: Final = MEMPOOL_TXS_MAX  # digests of committed txs (late copies)
GOSSIP_ADMISSION_BATCH_TXS_MAX: Final = 500  # gossiped txs whose signatures are checked at once
GOSSIP_FRAME_TXS_MAX: Final = 500  # transactions gossiped in one frame
GOSSIP_FRAME_BYTES_MAX: Final = 1024 * 1024  # ... and their bytes, at most (over one tx's cap)
DECODED_TXS_MAX: Final = 2 * MEMPOOL_TXS_MAX  # transactions kept decoded on their way through
DECODED_TX_BYTES_MAX: Final = 32 * 1024 * 1024  # ... and their encoded bytes, at most

# --- node: state --------------------------------------------------------------
RECORD_CACHE_MAX: Final = 250_000  # decoded committed records shared across blocks
RECORD_ABSENT_MAX: Final = 100_000  # keys known absent from the committed state, kept apart
ROLE_INDEX_KEYS_MAX: Final = 200_000  # committed keys of one role prefix indexed (~20 MB)

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
HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX: Final = 8  # one client's open streams (more get 429)
HTTP_STREAM_QUEUE_EVENTS_MAX: Final = 1_000  # a slower reader is disconnected
HTTP_STREAM_KEEPALIVE_S: Final = 15  # a silent stream writes a comment this often
HTTP_CSV_ROWS_MAX: Final = 100_000
HTTP_JSON_DEPTH_MAX: Final = 16  # nesting of a JSON body (ours nest 2 or 3 deep)
HTTP_JSON_NUMBER_DIGITS_MAX: Final = 64  # digits of one number in a JSON body
HTTP_BLOCKS_CACHED_MAX: Final = 32  # decoded blocks kept for history pages
HTTP_CERTIFIED_RANGE_BLOCKS_MAX: Final = 100  # certified blocks in one answer (audits)
HTTP_CERTIFIED_RANGE_BYTES_MAX: Final = BLOCK_BYTES_MAX  # their bytes, at least one block
STATE_SYNC_PAGE_ITEMS_MAX: Final = 2_000  # state entries in one page of GET /v1/state/items
STATE_SYNC_PAGE_BYTES_MAX: Final = 4 << 20  # their bytes, at least one entry
STATE_SYNC_SNAPSHOTS_KEPT: Final = 2  # frozen states a node serves pages of at once
STATE_SYNC_SNAPSHOT_TTL_MS: Final = 10 * 60_000  # a frozen state unused this long is released
STATE_SYNC_ITEMS_MAX: Final = 20_000_000  # entries a syncing node accepts in all
UI_MERCHANTS_PER_PAGE: Final = 100  # a commune's merchants on its dashboard, a page
UI_PAYOUTS_SHOWN: Final = 100  # a merchant's newest payouts on its dashboard
UI_PAYOUT_SCAN_MAX: Final = 5_000  # of its transactions read to find them
UI_SHOPS_PER_PAGE: Final = 30  # shops on a citizen's "where to spend", a page
UI_SHOPS_SCAN_MAX: Final = 20_000  # merchant records read to find them
UI_SEARCH_CHARS_MAX: Final = 60  # a search or filter typed on a page
VOUCHERS_STATUS_MAX: Final = 200_000  # allocations of one campaign a status report covers
VOUCHERS_STATUS_SCAN_TXS_MAX: Final = 100_000  # allocations and reissues read to find them
VOUCHERS_STATUS_INDEX_ENTRIES_MAX: Final = 1_000_000  # ... among this many history entries
VOUCHERS_PER_PAGE: Final = 5_000  # voucher statuses in one API answer
UI_VOUCHERS_PER_PAGE: Final = 100  # ... on the commune dashboard, a page
UI_BANK_ROWS_SHOWN: Final = 50  # the bank's dashboard: newest payouts, files, imports each
UI_BANK_WITHDRAWALS_SHOWN: Final = 50  # the bank's dashboard: newest withdrawals
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
API_LOGINS_REMEMBERED_MAX: Final = 100_000  # spent login links kept until they expire (on disk)
API_LOGINS_PER_ACCOUNT_MAX: Final = 64  # links one account may spend within their lifetime
API_LOGINS_PRUNED_PER_CALL_MAX: Final = 10_000  # expired links forgotten per login, at most
BALANCE_CODE_TTL_MAX_MS: Final = 2 * 366 * 86_400_000  # a paper letter's code: two years at most
BALANCE_CODE_CHARS_MAX: Final = 256

# --- node-local: derived views (node/views) ----------------------------------
VIEW_LAG_BLOCKS_MAX: Final = 64  # a view further behind the chain than this is not served
VIEW_BLOCKS_CACHED_MAX: Final = 64  # decoded committed blocks shared by the views
VIEW_ERROR_CHARS_MAX: Final = 500  # a failed view's error as health and status show it
VIEW_CONTROL_POLL_S: Final = 1.0  # how often a node reads rebuild requests, writes status
VIEW_RETRY_AFTER_S: Final = 5  # Retry-After of a route whose view is not serving
DEVNET_PAGES_READY_S_MAX: Final = 180.0  # `make run`: the views replaying the demo month

# Backups and restore (node.run.backup)
BACKUP_POLL_S: Final = 0.5  # how often a running node looks for a backup request
BACKUP_WAIT_S: Final = 600.0  # how long `relance-node backup` waits for the running node
BACKUP_RECORD_BYTES_MAX: Final = 64 << 20  # one store record in an archive (blocks are smaller)
BACKUP_FILE_BYTES_MAX: Final = 64 << 20  # one home file (config, journal...) in an archive
BACKUP_FILES_MAX: Final = 4_096  # members of an archive
BACKUP_RESTORE_BATCH_RECORDS: Final = 10_000  # store records per synced write batch on restore
RESTORE_MARGIN_HEIGHTS: Final = 2  # a restored validator signs only this far past the network
