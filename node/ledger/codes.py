"""Result codes: every expected failure of a transaction, numbered for ever.

A code's number and name are part of the protocol and of the API: never
renumber, never reuse. Add new codes at the end.
"""

from __future__ import annotations

import enum


class Result(enum.IntEnum):
    OK = 0
    MALFORMED = 1
    TOO_LARGE = 2
    UNKNOWN_KIND = 3
    UNSUPPORTED_VERSION = 4
    WRONG_CHAIN = 5
    BAD_SIGNATURE = 6
    BAD_SEQUENCE = 7
    BAD_AMOUNT = 8
    NOT_AUTHORIZED = 9
    UNKNOWN_MERCHANT = 10
    MERCHANT_SUSPENDED = 11
    MERCHANT_NOT_ELIGIBLE = 12
    ACCOUNT_EXISTS = 13
    UNKNOWN_CAMPAIGN = 14
    CAMPAIGN_EXISTS = 15
    CAMPAIGN_NOT_ACTIVE = 16
    CAMPAIGN_CLOSED = 17
    CAMPAIGN_STILL_RUNNING = 18
    INSUFFICIENT_FUNDS = 19
    INSUFFICIENT_BUDGET = 20
    HOLDER_CAP_EXCEEDED = 21
    DUPLICATE_REFERENCE = 22
    UNKNOWN_PAYOUT = 23
    PAYOUT_ALREADY_SETTLED = 24
    REFUND_EXCEEDS_PAYMENTS = 25
    AUTHORIZATION_EXPIRED = 26
    AUTHORIZATION_USED = 27
    AUTHORIZATION_EXCEEDED = 28
    BAD_AUTHORIZATION = 29
    INVALID_ZONE = 30
    INVALID_FIELD = 31
    NOT_A_HOLDER = 32
    LIMIT_EXCEEDED = 33
    SELF_TRANSFER = 34
    DUPLICATE_ENTRY = 35
    NOTHING_TO_MOVE = 36
    EVIDENCE_INVALID = 37
    EVIDENCE_KNOWN = 38
    EVIDENCE_TOO_OLD = 39
    INSUFFICIENT_APPROVALS = 40
    VALIDATOR_CHANGE_PENDING = 41
    INVALID_HEIGHT = 42
    INVALID_VALIDATOR_SET = 43
    PAYOUT_RETURNED = 44
    INVALID_NAME = 45
    ZONE_NOT_CONSENTED = 46
    UNKNOWN_ISSUER = 47
    UPGRADE_PENDING = 48
    KEY_ROTATED = 49
    KEY_NOT_YET_IN_FORCE = 50
    KEY_ROTATION_PENDING = 51
    NOT_AN_ACCOUNT = 52

    @property
    def message(self) -> str:
        return MESSAGES[self]


MESSAGES: dict[Result, str] = {
    Result.OK: "applied",
    Result.MALFORMED: "the transaction bytes are not one canonical encoding",
    Result.TOO_LARGE: "the transaction is larger than the protocol allows",
    Result.UNKNOWN_KIND: "no transaction kind has this number",
    Result.UNSUPPORTED_VERSION: "this encoding version is not supported",
    Result.WRONG_CHAIN: "the transaction was made for another chain",
    Result.BAD_SIGNATURE: "the signature does not verify for the sender's key",
    Result.BAD_SEQUENCE: "the sequence number is not the sender's next one",
    Result.BAD_AMOUNT: "amounts must be whole cents above zero and below the cap",
    Result.NOT_AUTHORIZED: "the sender's role may not do this",
    Result.UNKNOWN_MERCHANT: "no merchant is registered with this key",
    Result.MERCHANT_SUSPENDED: "the merchant is suspended",
    Result.MERCHANT_NOT_ELIGIBLE: "the merchant is outside the campaign's zones or categories",
    Result.ACCOUNT_EXISTS: "this key already has a role on the ledger",
    Result.UNKNOWN_CAMPAIGN: "no campaign has this code",
    Result.CAMPAIGN_EXISTS: "a campaign already has this code",
    Result.CAMPAIGN_NOT_ACTIVE: "the campaign is not open at this block time",
    Result.CAMPAIGN_CLOSED: "the campaign is closed",
    Result.CAMPAIGN_STILL_RUNNING: "the campaign cannot be closed before its end",
    Result.INSUFFICIENT_FUNDS: "the balance is too low",
    Result.INSUFFICIENT_BUDGET: "the campaign's unallocated budget is too low",
    Result.HOLDER_CAP_EXCEEDED: "the holder would exceed the campaign's maximum per holder",
    Result.DUPLICATE_REFERENCE: "the bank reference was already used",
    Result.UNKNOWN_PAYOUT: "no payout has this id",
    Result.PAYOUT_ALREADY_SETTLED: "the payout is already settled",
    Result.REFUND_EXCEEDS_PAYMENTS: "a refund may not exceed what the holder paid this merchant",
    Result.AUTHORIZATION_EXPIRED: "the spending authorization has expired",
    Result.AUTHORIZATION_USED: "the spending authorization was already used",
    Result.AUTHORIZATION_EXCEEDED: "the amount is above the authorization's maximum",
    Result.BAD_AUTHORIZATION: "the spending authorization is not valid for this payment",
    Result.INVALID_ZONE: "the zone is not in the issuer's territory",
    Result.INVALID_FIELD: "a field is empty, too long or badly formed",
    Result.NOT_A_HOLDER: "the key belongs to a bank, issuer, merchant or auditor, not a holder",
    Result.LIMIT_EXCEEDED: "a protocol limit would be exceeded",
    Result.SELF_TRANSFER: "sender and recipient are the same",
    Result.DUPLICATE_ENTRY: "the same entry appears twice in one transaction",
    Result.NOTHING_TO_MOVE: "there is no balance to move",
    Result.EVIDENCE_INVALID: "the two statements are not a proven double signature",
    Result.EVIDENCE_KNOWN: "this double signature is already on the ledger",
    Result.EVIDENCE_TOO_OLD: "the double signature is older than the evidence age limit",
    Result.INSUFFICIENT_APPROVALS: "governance needs signatures of more than 2/3 of voting power",
    Result.VALIDATOR_CHANGE_PENDING: "a validator set change is already scheduled",
    Result.INVALID_HEIGHT: "the height is not allowed here",
    Result.INVALID_VALIDATOR_SET: "the validator set is empty, too large or malformed",
    Result.PAYOUT_RETURNED: "the bank returned this payout to the merchant's balance",
    Result.INVALID_NAME: "a name is empty, too long, not NFC, or holds control or bidi characters",
    Result.ZONE_NOT_CONSENTED: "the zone's commune has not consented to this issuer's campaigns",
    Result.UNKNOWN_ISSUER: "no issuer (commune or region) has this key",
    Result.UPGRADE_PENDING: "a protocol upgrade is already scheduled",
    Result.KEY_ROTATED: "this key no longer signs for its account: governance moved it to another",
    Result.KEY_NOT_YET_IN_FORCE: "this key signs for its account only from a later height",
    Result.KEY_ROTATION_PENDING: "a key rotation of this account is already scheduled",
    Result.NOT_AN_ACCOUNT: "the key is no bank, issuer or auditor account",
}
