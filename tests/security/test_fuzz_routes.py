"""The fuzz pass: every route of the node's own OpenAPI document, with every role's token.

Schemathesis builds hypothesis strategies from ``GET /v1/openapi.json`` of an in-process
node with data (``tests/api/world.py``, plus the bank's settlement routes); valid and
invalid requests are drawn for every operation and sent with the token of a holder, a
merchant, an issuer, the bank, an auditor, and no token. Parameters are often swapped for
real keys, ids, codes and heights of the world, so that requests reach data, not only
404s, or for values that broke the node before (Unicode digits, 5,000-digit numbers), and
JSON bodies for hostile ones (100,000 deep, huge numbers). A deterministic sweep then
asks every GET route for every real value with every role, and the dashboards (not in
the document) are asked with each role's session and drawn query strings.

Every answer must be below 500, and no 2xx answer may reveal what the role may not see
(the rules of ``node/api/access.py`` and ``views.may_read_payout``): history only of
the accounts the role may read and only of transactions it is party to, payouts of its
own, analytics of its own commune, whole blocks and the settlement journal for the
bank and auditors, nothing private without a token; and a holder's, merchant's or
commune's private answers never hold the key of a holder they have nothing to do with.

The stream (``/v1/stream``) never ends and is left out; ``tests/api/test_stream.py``
checks what it sends to whom. Own settings: a fixed number of examples per operation,
``derandomize`` (a fixed seed), no example database; about a minute on a shared host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from node.api import tokens
from node.api.server import API_KEY
from tests.api.harness import VALIDATOR, LiveNode
from tests.api.world import CAMPAIGN, LIEGE_CAMPAIGN, World

EXAMPLES_PER_OPERATION: Final = 6
SKIPPED_PATHS: Final = frozenset({"/v1/stream"})
ROLES: Final = ("holder", "merchant", "issuer", "bank", "auditor", "none")
FUZZ_SETTINGS: Final = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # a fixed seed: the same requests every run
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Who:
    role: str
    key: str | None  # hex, None without a token
    token: str | None
    foreign: frozenset[str]  # holders' keys this role's private answers must never hold


@dataclass(frozen=True)
class Facts:
    """What the world holds, read once as the auditor (who reads everything)."""

    keys: tuple[str, ...]
    tx_ids: tuple[str, ...]
    payout_ids: tuple[str, ...]
    heights: tuple[int, ...]
    parties: dict[str, frozenset[str]]  # tx id -> keys party to it
    payouts: dict[str, dict[str, Any]]

    def substitutes(self, name: str) -> tuple[object, ...]:
        return {
            "key": self.keys,
            "issuer": self.keys,
            "merchant": self.keys,
            "tx_id": self.tx_ids,
            "payout_id": self.payout_ids,
            "height": self.heights,
            "code": (CAMPAIGN, LIEGE_CAMPAIGN),
        }.get(name, ())


def everyone(world: World) -> dict[str, str]:
    names = ("bank", "namur", "liege", "auditor", "bakery", "brasserie", "supplier",
             "liege_shop", "alice", "bob", "carol", "voucher", "dave")  # fmt: skip
    return {name: getattr(world, name).pk.hex() for name in names}


def read_facts(world: World) -> Facts:
    node = world.node
    auditor = node.token(world.auditor.signer)
    txs = node.get("/v1/transactions?limit=500", auditor).json()["items"]
    payouts = node.get("/v1/payouts?limit=500", auditor).json()["items"]
    assert isinstance(txs, list) and isinstance(payouts, list) and txs and payouts
    top = node.get("/v1/status").json()["height"]
    assert isinstance(top, int)
    index = node.app[API_KEY].gate.index
    keys = tuple(everyone(world).values())

    def party_to(tx: dict[str, Any]) -> frozenset[str]:
        def read() -> frozenset[str]:
            return frozenset(
                k for k in keys if index.is_party(bytes.fromhex(k), tx["height"], tx["index"])
            )

        return node.run(read)

    parties = {tx["tx_id"]: party_to(tx) for tx in txs}
    return Facts(
        keys=keys,
        tx_ids=tuple(tx["tx_id"] for tx in txs),
        payout_ids=tuple(p["payout_id"] for p in payouts),
        heights=tuple(range(1, top + 1)),
        parties=parties,
        payouts={p["payout_id"]: p for p in payouts},
    )


def identities(world: World) -> dict[str, Who]:
    node, keys = world.node, everyone(world)
    holders = {keys[n] for n in ("alice", "bob", "carol", "voucher", "dave")}

    def who(role: str, name: str, foreign: set[str]) -> Who:
        signer = getattr(world, name).signer
        return Who(role, keys[name], node.token(signer, ttl_ms=2 * 3_600_000), frozenset(foreign))

    return {
        # Alice was allocated in one list with Bob, Carol and the paper voucher.
        "holder": who("holder", "alice", holders - {keys["alice"]}),
        # The bakery was paid by Alice only.
        "merchant": who("merchant", "bakery", holders - {keys["alice"]}),
        # Namur has nothing to do with Dave, Liège's holder.
        "issuer": who("issuer", "namur", {keys["dave"]}),
        "bank": who("bank", "bank", set()),
        "auditor": who("auditor", "auditor", set()),
        "none": Who("none", None, None, frozenset()),
    }


# --- what a role may see -------------------------------------------------------------------


def violations(
    who: Who, facts: Facts, path: str, params: dict[str, Any], access: str, body: object
) -> Iterator[str]:
    """Why a 2xx answer to ``who`` on ``path`` reveals too much (nothing: it is fine)."""
    role, me = who.role, who.key
    reads_all = role == "auditor"
    if access == "required" and role == "none":
        yield "a private route answered 2xx without a token"
        return
    text = json.dumps(_without_raw_bytes(path, body))
    if access != "public":  # what a token may add to an answer is private
        for key in who.foreign:
            if key in text:
                yield f"the answer holds the key {key[:12]}… of a holder unrelated to the {role}"
    if not isinstance(body, dict):
        return

    def party(tx: dict[str, Any]) -> bool:
        return reads_all or me in facts.parties.get(str(tx.get("tx_id")), frozenset())

    def own_payout(payout: dict[str, Any]) -> bool:
        return role in ("bank", "auditor") or me in (payout.get("merchant"), payout.get("issuer"))

    if path == "/v1/session" and body.get("account") != me:
        yield "the session names another account"
    if path in ("/v1/transactions", "/v1/accounts/{key}/transactions"):
        mine = params.get("key") in (None, me)
        if path.endswith("{key}/transactions") and role in ("holder", "merchant") and not mine:
            yield "a holder or merchant read another account's history"
        for tx in body.get("items", []):
            if not party(tx):
                yield f"history shows {tx.get('tx_id')}, which the {role} is not party to"
    shown = body.get("transaction") if path == "/v1/transactions/{tx_id}" else None
    if shown is not None and not party(body):
        yield "a receipt shows the content of a transaction to a non-party"
    raw = body.get("tx") if path == "/v1/proofs/transactions/{tx_id}" else None
    if raw is not None and not party(body):
        yield "a proof carries the bytes of a transaction to a non-party"
    if path in ("/v1/payouts", "/v1/payouts/{payout_id}"):
        items = body.get("items", []) if path == "/v1/payouts" else [body]
        if role == "holder":
            yield "a holder read payouts"
        for payout in items:
            if not own_payout(payout):
                yield f"the {role} read payout {payout.get('payout_id')}, not its own"
    if path == "/v1/blocks/{height}/certified" and role not in ("bank", "auditor"):
        yield "whole blocks went to a role other than the bank and auditors"
    if path.startswith("/v1/analytics/"):
        asked = params.get("issuer")
        if not (reads_all or (role == "issuer" and asked in (None, me))):
            yield "analytics went to a reader other than their commune or an auditor"
    if path == "/v1/settlement/iban" and role != "merchant":
        yield "an IBAN registration went to someone other than its merchant"
    if path == "/v1/settlement/summary" and role not in ("bank", "auditor"):
        yield "the settlement journal went to someone other than the bank and auditors"
    if path.startswith("/v1/settlement/statement"):
        asked = params.get("issuer")
        if not (role in ("bank", "auditor") or (role == "issuer" and asked in (None, me))):
            yield "a statement went to someone other than its commune, the bank or auditors"


# The whole transaction's bytes that GET /v1/proofs/transactions/{tx_id} gives its parties
# (issue 15, finding 1, fixed on another branch: the proof will carry the reader's own item
# only). Until then the bytes are checked by the party rule alone, not for foreign keys;
# remove this exemption with that fix.
RAW_BYTES_FIELDS: Final[dict[str, str]] = {}


def _without_raw_bytes(path: str, body: object) -> object:
    field = RAW_BYTES_FIELDS.get(path)
    if field is None or not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k != field}


# --- the pass -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_setup(secure_world: World) -> tuple[Any, Facts, dict[str, Who]]:
    node = secure_world.node
    document = node.get("/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    return schema, read_facts(secure_world), identities(secure_world)


def operations(schema: Any) -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in SKIPPED_PATHS:
            found.append(operation)
    return found


def access_of(document_operation: dict[str, Any]) -> str:
    """ "public", "optional" (a token adds to the answer) or "required", from the document."""
    security = document_operation.get("security")
    if not security:
        return "public"
    return "optional" if {} in security else "required"


# Values that broke the node once (issue 15, finding 6): Unicode digits (str.isdigit says
# yes; int() refuses "²" and reads "١٢" as 12), numbers past int()'s 4,300 digits, signs,
# spaces, exponents. Every parameter of every route is sometimes given one of them.
HOSTILE_VALUES: Final = (
    "\u00b2", "\u00b3\u00b9", "\u0661\u0662", "\uff15", "9" * 5_000, "-1", "1e3", " 7",
    "0" * 40 + "1", "0x10", "\u0000", "%ff", "\u202e1",
)  # fmt: skip
HOSTILE_BODIES: Final = (
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"tx": ' + b"7" * 5_000 + b"}",
    b'{"txs": [' + b"1" * 5_000 + b"]}",
    b'{"tx": NaN}',
    b'{"tx": "00", "tx": "01"}',
    b"\xff\xfe{}",
)


def draw_parameters(
    data: st.DataObject, case: Any, facts: Facts, query_names: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Path and query parameters: as generated, or swapped for a real value of the world
    (keys, ids, heights, codes), or for a hostile value."""
    path_params = dict(case.path_parameters or {})
    for name in path_params:
        real = facts.substitutes(name)
        pick = data.draw(st.integers(0, 2), label=f"{name}: generated, real, hostile")
        if pick == 1 and real:
            path_params[name] = data.draw(st.sampled_from(real), label=name)
        elif pick == 2:
            path_params[name] = data.draw(st.sampled_from(HOSTILE_VALUES), label=name)
    query = dict(case.query or {})
    for name in query_names:
        pick = data.draw(st.integers(0, 3), label=f"{name}: generated, real, hostile")
        if pick == 1 and name in ("issuer", "merchant"):
            query[name] = data.draw(st.sampled_from(facts.keys), label=name)
        elif pick == 2:
            query[name] = data.draw(st.sampled_from(HOSTILE_VALUES), label=name)
    return path_params, query


def fuzz(node: LiveNode, who: Who, facts: Facts, operation: Any, spec: dict[str, Any]) -> None:
    access = access_of(spec)
    query_names = [p["name"] for p in spec.get("parameters", []) if p["in"] == "query"]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    http = requests.Session()

    @FUZZ_SETTINGS
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        path_params, query = draw_parameters(data, case, facts, query_names)
        case.path_parameters = path_params
        case.query = query
        headers = {"Authorization": f"Bearer {who.token}"} if who.token else {}
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
        case.cookies = {}
        label = f"{who.role} {case.method} {case.formatted_path} {query}"
        if case.method == "POST" and data.draw(st.integers(0, 2), label="hostile body") == 0:
            raw = data.draw(st.sampled_from(HOSTILE_BODIES), label="body")
            sent = http.post(
                node.url + case.formatted_path,
                params=query,
                data=raw,
                headers={**headers, "Content-Type": "application/json"},
                timeout=30,
            )
            assert sent.status_code < 500, f"{label} {raw[:20]!r}: {sent.status_code}"
            return
        response = case.call(base_url=node.url, session=http, headers=headers, timeout=30)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text}"
        if not 200 <= response.status_code < 300:
            return
        body: object = None
        content_type = (response.headers.get("content-type") or [""])[0]  # lowercase, lists
        if content_type.startswith("application/json"):
            body = response.json()
        else:
            body = response.content.decode(errors="replace")  # CSV, PDF, Parquet
        params = {**path_params, **query}
        found = list(violations(who, facts, operation.path, params, access, body))
        assert not found, f"{label}: {found}"

    run()


@pytest.mark.parametrize("role", ROLES)
def test_no_route_fails_or_tells_a_role_what_it_may_not_see(
    secure_world: World, fuzz_setup: tuple[Any, Facts, dict[str, Who]], role: str
) -> None:
    schema, facts, whos = fuzz_setup
    node = secure_world.node
    document = node.get("/v1/openapi.json").json()["paths"]
    assert isinstance(document, dict)
    covered = []
    for operation in operations(schema):
        spec = document[operation.path][operation.method.lower()]
        fuzz(node, whos[role], facts, operation, spec)
        covered.append((operation.method.upper(), operation.path))
    every = {(m.upper(), p) for p, ops in document.items() for m in ops}
    assert set(covered) == every - {("GET", p) for p in SKIPPED_PATHS}
    assert ("POST", "/v1/settlement/iban") in every  # the bank's routes are in the pass


def real_requests(
    facts: Facts, document: dict[str, Any]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every GET route with every real value of its path parameter, and every route that
    takes ``?issuer=`` with every real key: (path template, URL, parameters)."""
    for path, methods in document.items():
        if "get" not in methods or path in SKIPPED_PATHS:
            continue
        names = re.findall(r"{(\w+)}", path)
        takes_issuer = any(p["name"] == "issuer" for p in methods["get"].get("parameters", []))
        values: list[dict[str, Any]] = [{}]
        if names:
            values = [{names[0]: v} for v in facts.substitutes(names[0])]
        for params in values:
            url = path.format(**params)
            yield path, url, params
            if takes_issuer:
                for key in facts.keys:
                    yield path, f"{url}?issuer={key}", {**params, "issuer": key}


@pytest.mark.parametrize("role", ROLES)
def test_every_route_with_every_real_value_keeps_to_the_role(
    secure_world: World, fuzz_setup: tuple[Any, Facts, dict[str, Who]], role: str
) -> None:
    """The deterministic half of the pass: no sampling, every real key, id and height."""
    _, facts, whos = fuzz_setup
    who, node = whos[role], secure_world.node
    document = node.get("/v1/openapi.json").json()["paths"]
    assert isinstance(document, dict)
    answered = 0
    for path, url, params in real_requests(facts, document):
        response = node.get(url, who.token)
        assert response.status < 500, (role, url, response.status, response.body[:300])
        if not 200 <= response.status < 300:
            continue
        answered += 1
        body: object = response.body.decode(errors="replace")
        if response.content_type == "application/json":
            body = json.loads(response.body)
        access = access_of(document[path]["get"])
        found = list(violations(who, facts, path, params, access, body))
        assert not found, (role, url, found)
    assert answered > 50  # the sweep reached data, not only refusals


def test_the_oracle_catches_what_it_should(
    fuzz_setup: tuple[Any, Facts, dict[str, Who]],
) -> None:
    """The privacy rules themselves flag the leaks they are meant to catch."""
    _, facts, whos = fuzz_setup
    holder, issuer = whos["holder"], whos["issuer"]
    other_tx = next(t for t, keys in facts.parties.items() if holder.key not in keys)
    leak = {"items": [{"tx_id": other_tx}], "next_cursor": None}
    assert list(violations(holder, facts, "/v1/transactions", {}, "required", leak))
    foreign = next(iter(holder.foreign))
    assert list(violations(holder, facts, "/v1/accounts/{key}", {}, "required", {"k": foreign}))
    assert list(violations(whos["none"], facts, "/v1/session", {}, "required", {}))
    assert list(violations(whos["merchant"], facts, "/v1/analytics/zones", {}, "required", {}))
    other = whos["auditor"].key
    assert list(violations(issuer, facts, "/v1/analytics/zones", {"issuer": other}, "required", {}))
    payout = next(iter(facts.payouts.values()))
    assert list(violations(holder, facts, "/v1/payouts/{payout_id}", {}, "required", payout))
    assert not list(violations(whos["auditor"], facts, "/v1/transactions", {}, "required", leak))
    assert re.fullmatch(r"[0-9a-f]{64}", other_tx)


# --- the dashboards (not in the OpenAPI document) ----------------------------------------------

PAGES: Final = {  # page -> roles that may open it
    "/ui/holder": frozenset(ROLES) - {"none"},
    "/ui/merchant": frozenset({"merchant"}),
    "/ui/commune": frozenset({"issuer"}),
    "/ui/commune/transactions.csv": frozenset({"issuer"}),
    "/ui/commune/analytics": frozenset({"issuer"}),
    "/ui/auditor": frozenset({"auditor", "bank"}),
    "/ui/commune/vouchers": frozenset({"issuer"}),
    "/ui/commune/vouchers.csv": frozenset({"issuer"}),
    "/ui/bank": frozenset({"bank"}),
    "/ui/bank/payouts.csv": frozenset({"bank"}),
}
PAGE_EXAMPLES: Final = 80  # per role, over all the pages
PAGE_QUERY_NAMES: Final = (
    "kind", "campaign", "cursor", "merchants", "lang", "k", "issuer",
    "q", "category", "zone", "page", "status", "after", "day",
)  # fmt: skip


def page_session(world: World, who: Who) -> dict[str, str]:
    """The cookie of a dashboard session of ``who`` (a wallet login link, exchanged once)."""
    if who.role == "none":
        return {}
    name = {"holder": "alice", "merchant": "bakery", "issuer": "namur", "bank": "bank",
            "auditor": "auditor"}[who.role]  # fmt: skip
    node = world.node
    link = tokens.make_token(
        getattr(world, name).signer, node.genesis.chain_id, VALIDATOR.public_key,
        node.wall_ms, 2 * 3_600_000 - 11, tokens.LINK_KIND,
    )  # fmt: skip
    landed = node.http("GET", f"/ui/login?token={link}")
    assert landed.status == 303, landed.body[:300]
    cookie = next(c for c in landed.headers["set-cookie"].split("\n") if "relance_session=" in c)
    return {"relance_session": cookie.split(";")[0].split("=", 1)[1]}


@pytest.mark.parametrize("role", ROLES)
def test_no_dashboard_page_fails_or_opens_to_the_wrong_role(
    secure_world: World, fuzz_setup: tuple[Any, Facts, dict[str, Who]], role: str
) -> None:
    _, facts, whos = fuzz_setup
    who, node = whos[role], secure_world.node
    http = requests.Session()
    http.cookies.update(page_session(secure_world, who))
    value = st.one_of(
        st.text(max_size=40), st.sampled_from(HOSTILE_VALUES), st.sampled_from(facts.keys)
    )
    queries = st.dictionaries(st.sampled_from(PAGE_QUERY_NAMES), value, max_size=3)

    @settings(FUZZ_SETTINGS, max_examples=PAGE_EXAMPLES)
    @given(page=st.sampled_from(sorted(PAGES)), query=queries)
    def run(page: str, query: dict[str, str]) -> None:
        response = http.get(node.url + page, params=query, timeout=30, allow_redirects=False)
        label = f"{role} {page} {query}"
        assert response.status_code < 500, f"{label}: {response.status_code}"
        if response.status_code == 200 and 'name="token"' not in response.text:  # not the form
            assert role in PAGES[page], f"{label}: the page opened to the {role}"
            for key in who.foreign:
                assert key not in response.text, f"{label}: shows {key[:12]}…"

    run()
