"""The merchant counter page (/ui/merchant/counter) in Debian's Chromium, driven by
Playwright, with a fake camera: a real letter from `relance-wallet issuer letters` is
rendered to an image (pdftoppm), written as a .y4m video and fed to Chromium as the
camera; the page decodes the QR (jsQR), signs the payment with the voucher key in the
browser (tweetnacl) and the ledger's balance changes once, even after a second confirm or
a reload in the middle of the charge. The page's signing is checked byte for byte against
node/ledger/tx.py, and axe-core finds no serious accessibility violation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from node.ledger import tx as t
from node.protocol.crypto import PublicKey, Signer, digest
from node.text.fmt import datetime_text, money
from tests.api.axe import assert_no_serious_violation
from tests.api.harness import LiveNode
from tests.api.screens import SCREENSHOTS
from tests.api.world import CAMPAIGN, World, seed
from tests.wallet.support import Cli, cli_env, pdf_to_png, zbar
from tools import frontend
from wallets.voucher import SignedAuthorization, Voucher, parse_voucher, qr_png, seal_key

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow

CHROMIUM: Final = "/usr/bin/chromium"
ARGS: Final = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WAIT_MS: Final = 20_000
PHONE: Final = {"width": 390, "height": 844}
LETTER_DPI: Final = 254  # 10 pixels a millimetre
FRAME: Final = (1280, 720)
# Where the voucher QR is on a letter (wallets/letters.py: 42 mm square, 130 mm from the
# left, its top 115 mm from the top of the page): the phone held over it, 128 x 72 mm.
FRAME_LEFT_MM: Final = 82
FRAME_TOP_MM: Final = 100
VOUCHER_CENTS: Final = 3_000
FLASH: Final = "namur-flash"
PASSPHRASE: Final = "boulangerie 2026"
HOSTILE: Final = "Chez </script><script>alert(1)</script> & 'Zoë' \"<b>"


@dataclass
class Counter:
    world: World
    cli: Cli
    letters: list[Path]  # one PDF per postal voucher
    camera: Path  # the .y4m made from the first letter
    expired: str  # the code of a voucher whose campaign has ended
    hostile: Signer  # a shop whose name is markup

    def uri(self, letter: Path) -> str:
        """The voucher code of a letter, read from its QR code by zbarimg."""
        (png,) = pdf_to_png(letter, letter.with_suffix(""), dpi=150)
        (uri,) = [code for code in zbar(png) if code.startswith("RLV1:")]
        return uri

    def voucher_key(self, letter: Path) -> bytes:
        return bytes(parse_voucher(self.uri(letter)).signer.public_key)

    def cents(self, key: bytes, campaign: str = CAMPAIGN) -> int:
        body = self.world.node.get(f"/v1/accounts/{key.hex()}").json()
        rows = body["balances"]
        assert isinstance(rows, list)
        return sum(int(r["cents"]) for r in rows if r.get("campaign") == campaign)

    def merchant_cents(self) -> int:
        body = self.world.node.get(f"/v1/accounts/{self.world.bakery.pk.hex()}").json()
        rows = body["balances"]
        assert isinstance(rows, list)
        return sum(int(r["cents"]) for r in rows)


def y4m_from_png(png: Path, out: Path, left_mm: int, top_mm: int) -> Path:
    """A two-frame 4:2:0 YUV4MPEG2 video of a part of the page (the camera's view)."""
    width, height = FRAME
    dots = LETTER_DPI / 25.4
    box = (int(left_mm * dots), int(top_mm * dots))
    with Image.open(png) as page:
        view = page.convert("RGB").crop((box[0], box[1], box[0] + width, box[1] + height))
    y, cb, cr = view.convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    header = f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1 C420jpeg\n".encode()
    out.write_bytes(header + (b"FRAME\n" + planes) * 2)
    return out


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    """Every expectation waits up to WAIT_MS: the machine is shared, the page signs and waits
    for a block."""
    expect.set_options(timeout=WAIT_MS)
    try:
        yield
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counter]:
    if not frontend.up_to_date():
        frontend.main()  # npm ci (pinned) and copy, as `make test` does before pytest
    root = tmp_path_factory.mktemp("counter")
    (root / "node").mkdir()
    node = LiveNode(root / "node")
    try:
        world = seed(node)
        cli = Cli(cli_env(root / "home", node.url))
        cli.json("key", "import", "namur", "--seed-hex", world.namur.signer.seed.hex())
        households = root / "households.csv"
        households.write_text(
            "amount;zone;channel;name;address;email;holder\n"
            + "".join(
                f"30;NAM-1;post;Zoë Lefèvre {n};Rue de l'Église {n};5000 Namur;;\n"
                for n in range(4)
            ),
            encoding="utf-8",
        )
        done = cli.json("--yes", "issuer", "allocate", "--key", "namur", CAMPAIGN,
                        str(households))  # fmt: skip
        assert done["allocated"] == 4
        world.namur.sequence = int(str(node.get(f"/v1/accounts/{world.namur.pk.hex()}")
                                       .json()["sequence"]))  # fmt: skip
        letters = cli.json("--yes", "issuer", "letters", "--key", "namur", CAMPAIGN,
                           "--out", str(root / "letters"))  # fmt: skip
        paths = sorted(Path(p) for p in letters["files"])  # type: ignore[union-attr]
        assert len(paths) == 4
        (page_png,) = pdf_to_png(paths[0], root / "letter", dpi=LETTER_DPI)
        camera = y4m_from_png(page_png, root / "camera.y4m", FRAME_LEFT_MM, FRAME_TOP_MM)
        hostile = Signer(digest(b"counter-hostile"))
        node.commit(
            world.namur.sign(
                world.chain,
                t.RegisterMerchant(
                    hostile.public_key, HOSTILE, "47.11", "NAM-1", digest(b"iban-h"), False
                ),
            )
        )
        yield Counter(world, cli, paths, camera, _expired_voucher(world), hostile)
    finally:
        node.close()


def _expired_voucher(world: World) -> str:
    """A voucher of a campaign that ends three blocks from now (a block a second)."""
    node, chain = world.node, world.chain
    end = node.next_time_ms + 3_000
    voucher = Voucher(chain.upper(), digest(b"counter-expired"))
    node.commit(
        world.namur.sign(
            chain,
            t.CreateCampaign(FLASH, "Flash", (), (), node.genesis.genesis_time_ms, end, 10_000),
        )
    )
    node.commit(world.bank.sign(chain, t.Fund(FLASH, 1_000, "DEP-FLASH")))
    node.commit(
        world.namur.sign(
            chain, t.Allocate(FLASH, (t.Allocation(voucher.signer.public_key, 500, "NAM-1"),))
        )
    )
    while node.next_time_ms <= end:
        node.commit()
    campaign = node.get(f"/v1/campaigns/{FLASH}").json()
    assert campaign["active"] is False and campaign["outstanding_cents"] == 500
    return voucher.uri()  # fmt: skip


@pytest.fixture(scope="module")
def browser(counter: Counter) -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "chromium is installed by 'make test' (Debian's package)"
    camera = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={counter.camera}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS + camera, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def counter_page(
    browser: Browser,
    counter: Counter,
    lang: str = "fr-BE",
    bypass_csp: bool = False,
    shop: Signer | None = None,
) -> Page:
    node = counter.world.node
    context = browser.new_context(
        locale=lang, viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=bypass_csp
    )
    context.grant_permissions(["camera"], origin=node.url)
    page = context.new_page()
    page.goto(f"{node.url}/ui/login")
    page.locator("#token").fill(node.token(shop or counter.world.bakery.signer))
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{node.url}/ui/merchant")
    page.locator('a[href="/ui/merchant/counter"]').click()  # from the shop's dashboard
    page.wait_for_url(f"{node.url}/ui/merchant/counter")
    expect(page.locator(".counter")).to_have_attribute("data-state", "scan", timeout=WAIT_MS)
    return page


def test_a_letter_shown_to_the_camera_is_charged_once(counter: Counter, browser: Browser) -> None:
    voucher = counter.voucher_key(counter.letters[0])
    assert counter.cents(voucher) == VOUCHER_CENTS
    shop_before = counter.merchant_cents()
    page = counter_page(browser, counter)

    page.get_by_role("button", name="Scanner un chèque").first.click()
    expect(page.locator(".counter")).to_have_attribute("data-state", "check", timeout=WAIT_MS)
    expect(page.get_by_test_id("campaign")).to_have_text("Chèques relance Namur")
    expect(page.get_by_test_id("remaining")).to_have_text(money(VOUCHER_CENTS))
    campaign = counter.world.node.get(f"/v1/campaigns/{CAMPAIGN}").json()
    day = str(campaign["last_valid_day"])
    expect(page.get_by_test_id("valid-until")).to_have_text(f"{day[8:10]}/{day[5:7]}/{day[0:4]}")

    page.get_by_label("Montant (€)").fill("12,50")
    page.get_by_role("button", name="Confirmer l'encaissement").dblclick()  # a second confirm
    expect(page.locator(".counter")).to_have_attribute("data-state", "receipt", timeout=WAIT_MS)
    expect(page.get_by_test_id("receipt-amount")).to_have_text(money(1_250))
    expect(page.get_by_test_id("receipt-shop")).to_have_text("Boulangerie du Marché")
    expect(page.get_by_test_id("receipt-left")).to_have_text(money(VOUCHER_CENTS - 1_250))
    tx_id = page.get_by_test_id("receipt-tx").inner_text()
    receipt = counter.world.node.get(f"/v1/transactions/{tx_id}").json()
    assert receipt["status"] == "committed"
    block = counter.world.node.get(f"/v1/blocks/{receipt['height']}").json()
    expect(page.get_by_test_id("receipt-time")).to_have_text(
        datetime_text(int(str(block["time_ms"])))
    )

    assert counter.cents(voucher) == VOUCHER_CENTS - 1_250  # charged once
    assert counter.merchant_cents() == shop_before + 1_250
    page.reload()  # the receipt stays; nothing is sent again
    expect(page.locator(".counter")).to_have_attribute("data-state", "receipt", timeout=WAIT_MS)
    assert counter.cents(voucher) == VOUCHER_CENTS - 1_250
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "counter-receipt.png"), full_page=True)


def test_a_reload_in_the_middle_of_a_charge_does_not_charge_twice(
    counter: Counter, browser: Browser
) -> None:
    letter = counter.letters[1]
    voucher = counter.voucher_key(letter)
    page = counter_page(browser, counter, lang="en-GB")
    page.goto(f"{counter.world.node.url}/ui/merchant/counter?lang=en")
    page.get_by_label("Or type the voucher code").fill(counter.uri(letter))
    page.get_by_role("button", name="Read this code").click()
    expect(page.get_by_test_id("remaining")).to_have_text(money(VOUCHER_CENTS))

    # The transaction reaches the node, but the answer never reaches the phone.
    sent: list[str] = []

    def lost_answer(route: Route) -> None:
        body = route.request.post_data or ""
        sent.append(json.loads(body)["tx"])
        route.fetch()  # the node gets it and commits it
        route.abort("connectionreset")

    page.route("**/v1/transactions?wait=true", lost_answer)
    page.get_by_role("button", name="Charge what is left").click()
    expect(page.get_by_label("Amount (€)")).to_have_value("30,00")
    page.get_by_role("button", name="Confirm the charge").click()
    expect(page.get_by_role("alert")).to_contain_text("Retrying cannot charge twice")
    assert counter.cents(voucher) == 0  # it was charged
    page.unroute("**/v1/transactions?wait=true")

    again: list[str] = []
    page.route("**/v1/transactions?wait=true", lambda r: (again.append(
        json.loads(r.request.post_data or "")["tx"]), r.continue_()))  # fmt: skip
    page.reload()  # mid-charge: the page sends the same signed bytes again
    expect(page.locator(".counter")).to_have_attribute("data-state", "receipt", timeout=WAIT_MS)
    assert again == sent  # the same transaction, not signed anew
    expect(page.get_by_test_id("receipt-amount")).to_have_text(money(VOUCHER_CENTS))
    expect(page.get_by_test_id("receipt-left")).to_have_text(money(0))
    assert counter.cents(voucher) == 0

    page.get_by_role("button", name="Next customer").click()  # the same voucher, used up
    page.get_by_label("Or type the voucher code").fill(counter.uri(letter))
    page.get_by_role("button", name="Read this code").click()
    expect(page.locator("#error-text")).to_have_text("This voucher is already used up.")


def test_errors_are_in_the_merchants_words(counter: Counter, browser: Browser) -> None:
    letter = counter.letters[2]
    left = counter.cents(counter.voucher_key(letter))  # other tests charge this letter too
    assert left >= 500  # the 5 € charge below fits; 31 € is more than a letter holds
    page = counter_page(browser, counter)
    uri = counter.uri(letter)
    damaged = uri[:-1] + ("B" if uri.endswith("A") else "A")  # never the code itself
    page.get_by_label("Ou tapez le code du chèque").fill(damaged)
    page.get_by_role("button", name="Lire ce code").click()
    alert = page.locator("#error-text")
    expect(alert).to_contain_text("Le code est abîmé")

    page.get_by_label("Ou tapez le code du chèque").fill(counter.uri(letter))
    page.get_by_role("button", name="Lire ce code").click()
    page.get_by_label("Montant (€)").fill("31")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(alert).to_have_text(f"Solde insuffisant : il reste {money(left)} sur ce chèque.")

    page.route("**/v1/transactions?wait=true", lambda route: route.abort("connectionrefused"))
    page.get_by_label("Montant (€)").fill("5")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(alert).to_contain_text("ne répond pas. Réessayer ne débitera pas deux fois.")
    page.unroute("**/v1/transactions?wait=true")
    page.get_by_role("button", name="Réessayer (sans risque de double débit)").click()
    expect(page.get_by_test_id("receipt-amount")).to_have_text(money(500), timeout=WAIT_MS)
    assert counter.cents(counter.voucher_key(letter)) == left - 500


def test_a_refund_from_the_receipt_is_signed_by_the_shop_key_on_the_phone(
    counter: Counter, browser: Browser
) -> None:
    letter = counter.letters[3]
    voucher = counter.voucher_key(letter)
    before = counter.cents(voucher)  # other tests charge this letter too
    assert before >= 2_000
    page = counter_page(browser, counter)
    keep_shop_key(page, Signer(bytes(32)), kept=False)  # not this shop's key
    expect(page.locator("#error-text")).to_have_text(
        "Cette clé n'est pas celle du commerce connecté."
    )
    keep_shop_key(page, counter.world.bakery.signer)
    stored = page.evaluate("JSON.stringify(localStorage)")
    assert counter.world.bakery.signer.seed.hex() not in stored  # sealed, not in clear

    page.get_by_label("Ou tapez le code du chèque").fill(counter.uri(letter))
    page.get_by_role("button", name="Lire ce code").click()
    page.get_by_label("Montant (€)").fill("20")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.get_by_test_id("receipt-left")).to_have_text(money(before - 2_000), timeout=WAIT_MS)

    page.get_by_label("Montant à rembourser (€)").fill("7,25")
    page.locator("#refund-passphrase").fill("wrong passphrase")
    page.get_by_role("button", name="Rembourser").click()
    expect(page.locator("#error-text")).to_have_text("Phrase secrète incorrecte.")
    page.locator("#refund-passphrase").fill(PASSPHRASE)
    page.get_by_role("button", name="Rembourser").click()
    expect(page.locator("#refunded")).to_have_text(f"Remboursé {money(725)}", timeout=WAIT_MS)
    expect(page.get_by_test_id("receipt-left")).to_have_text(money(before - 2_000 + 725))
    assert counter.cents(voucher) == before - 2_000 + 725


def test_the_page_signs_the_bytes_the_node_expects(counter: Counter, browser: Browser) -> None:
    world = counter.world
    page = counter_page(browser, counter)
    signer = Signer(digest(b"counter-vector"))
    holder = Signer(digest(b"counter-holder"))
    auth = t.Authorization(holder.public_key, CAMPAIGN, world.bakery.pk, 4_200,
                           5_000_000_000_000, bytes(range(16)))  # fmt: skip
    cases: list[tuple[t.Payload, str]] = [
        (t.Pay(CAMPAIGN, PublicKey(world.bakery.pk), 1_250, ""),
         f"['{CAMPAIGN}', R.unhex('{world.bakery.pk.hex()}'), 1250, '']"),
        (t.Refund(holder.public_key, CAMPAIGN, 70_000, "é"),
         f"[R.unhex('{holder.public_key.hex()}'), '{CAMPAIGN}', 70000, 'é']"),
        (t.PayAuthorized(auth, auth.sign(holder, world.chain), 4_000, ""),
         f"[R.unpack(R.unhex('{auth.encode().hex()}')), "
         f"R.unhex('{auth.sign(holder, world.chain).hex()}'), 4000, '']"),
    ]  # fmt: skip
    for n, (payload, fields) in enumerate([*cases, *cases]):
        sequence = n * 70_000  # small and multi-byte sequence numbers
        expected = t.Tx(world.chain, signer.public_key, sequence, payload).sign(signer)
        got = page.evaluate(
            f"""() => {{ const R = window.relanceCounter;
                const pair = nacl.sign.keyPair.fromSeed(R.unhex('{signer.seed.hex()}'));
                return R.signTx(pair, {sequence}, {int(payload.KIND)}, {fields}); }}"""
        )
        assert got == {"wire": expected.encode().hex(), "tx_id": expected.tx_id.hex()}
        decoded = t.decode_tx(bytes.fromhex(got["wire"]), world.chain)
        assert isinstance(decoded, t.SignedTx) and decoded.signature_ok()


def test_phone_screenshot_and_no_serious_accessibility_violation(
    counter: Counter, browser: Browser
) -> None:
    for lang in ("fr-BE", "en-GB"):
        page = counter_page(browser, counter, lang=lang, bypass_csp=True)  # axe is injected
        if lang == "fr-BE":
            page.screenshot(path=str(SCREENSHOTS / "counter.png"))
        assert_no_serious_violation(page)  # scanning
        page.locator("#typed").fill(counter.uri(counter.letters[3]))
        page.locator("#typed-form button").click()
        expect(page.locator(".counter")).to_have_attribute("data-state", "check")
        if lang == "fr-BE":
            page.screenshot(path=str(SCREENSHOTS / "counter-check.png"))
        assert_no_serious_violation(page)  # checking
        page.locator("#amount").fill("1")
        page.locator("#confirm").click()
        expect(page.locator(".counter")).to_have_attribute("data-state", "receipt")
        page.locator("#key-box summary").click()
        assert_no_serious_violation(page)  # the receipt, the key box open
        page.locator("#refund-amount").fill("99")
        page.locator("#refund").click()
        expect(page.locator("#error")).to_be_visible()
        assert_no_serious_violation(page)  # an error shown


def test_the_counter_is_the_logged_in_shops_only(counter: Counter) -> None:
    node, world = counter.world.node, counter.world
    assert "login" in node.get("/ui/merchant/counter").body.decode()  # not logged in
    holder = node.get("/ui/merchant/counter", node.token(world.alice.signer))
    assert holder.status == 403
    shop = node.get("/ui/merchant/counter", node.token(world.bakery.signer))
    assert shop.status == 200 and shop.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in shop.headers["content-security-policy"]
    assert world.bakery.signer.seed.hex() not in shop.body.decode()


def keep_shop_key(page: Page, shop: Signer, kept: bool = True) -> None:
    if page.locator("#key-box").get_attribute("open") is None:
        page.get_by_text("Clé du commerce sur ce téléphone", exact=True).click()
    page.locator("#key-seed").fill(shop.seed.hex())
    page.locator("#key-form").get_by_label("Phrase secrète").fill(PASSPHRASE)
    page.get_by_role("button", name="Garder la clé sur ce téléphone").click()
    if kept:
        expect(page.locator("#key-state")).to_have_text(
            "Clé du commerce présente sur ce téléphone."
        )


KEY_READ: Final = "Clé du commerce lue : tapez son code à usage unique et une phrase secrète."
KEY_KEPT: Final = "Clé du commerce présente sur ce téléphone."


def test_the_shop_key_comes_from_key_export_and_its_one_time_code(
    counter: Counter, browser: Browser
) -> None:
    """``relance-wallet key export`` text typed where a voucher code goes: the page takes it
    to the key's form, opens it with the one-time code only, and seals it again."""
    shop = counter.world.bakery.signer
    sealed, code = seal_key(shop.seed, counter.world.chain)
    page = counter_page(browser, counter)
    save = page.get_by_role("button", name="Garder la clé sur ce téléphone")
    typed = page.get_by_label("Ou tapez le code du chèque")
    damaged = sealed.uri()[:-1] + ("A" if sealed.uri()[-1] != "A" else "B")
    typed.fill(damaged)
    page.get_by_role("button", name="Lire ce code").click()
    page.locator("#key-code").fill(code)
    page.locator("#key-form").get_by_label("Phrase secrète").fill(PASSPHRASE)
    save.click()
    expect(page.locator("#error-text")).to_contain_text("Le code est abîmé")

    typed.fill(sealed.uri().lower())
    page.get_by_role("button", name="Lire ce code").click()
    expect(page.locator("#key-state")).to_have_text(KEY_READ)
    assert page.locator("#key-box").get_attribute("open") is not None
    expect(page.locator("#key-code")).to_be_focused()
    page.locator("#key-code").fill("AAAA-BBBB-CCCC")
    save.click()
    expect(page.locator("#error-text")).to_have_text(
        "Ce code à usage unique n'ouvre pas cette clé."
    )
    assert page.evaluate("Object.keys(localStorage).join()").count("relance.counter.key") == 0

    other, other_code = seal_key(counter.world.brasserie.signer.seed, counter.world.chain)
    page.locator("#key-seed").fill(other.uri())
    page.locator("#key-code").fill(other_code)
    save.click()
    expect(page.locator("#error-text")).to_have_text(
        "Cette clé n'est pas celle du commerce connecté."
    )

    page.locator("#key-seed").fill(sealed.uri())
    page.locator("#key-code").fill(f" {code.lower()} ")  # as typed on a phone
    save.click()
    expect(page.locator("#key-state")).to_have_text(KEY_KEPT)
    stored = page.evaluate("JSON.stringify(localStorage)")
    assert shop.seed.hex() not in stored and sealed.uri() not in stored
    assert page.locator("#key-seed").input_value() == page.locator("#key-code").input_value() == ""
    page.context.close()


def test_the_shop_key_qr_shown_to_the_camera(
    counter: Counter, browser: Browser, tmp_path: Path
) -> None:
    """The QR code of ``key export --png`` in front of the phone's camera."""
    shop = counter.world.bakery.signer
    sealed, code = seal_key(shop.seed, counter.world.chain)
    width, height = FRAME
    frame = Image.new("RGB", FRAME, "white")
    (tmp_path / "key.png").write_bytes(qr_png(sealed.uri(), scale=6))
    with Image.open(tmp_path / "key.png") as qr:
        frame.paste(qr.convert("RGB"), ((width - qr.width) // 2, (height - qr.height) // 2))
    frame.save(tmp_path / "frame.png")
    camera = y4m_from_png(tmp_path / "frame.png", tmp_path / "key.y4m", 0, 0)
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"]  # fmt: skip
    other = browser.browser_type.launch(executable_path=CHROMIUM, args=ARGS + args, headless=True)
    try:
        page = counter_page(other, counter)
        page.get_by_role("button", name="Scanner un chèque").first.click()
        expect(page.locator("#key-state")).to_have_text(KEY_READ)
        page.locator("#key-code").fill(code)
        page.locator("#key-form").get_by_label("Phrase secrète").fill(PASSPHRASE)
        page.get_by_role("button", name="Garder la clé sur ce téléphone").click()
        expect(page.locator("#key-state")).to_have_text(KEY_KEPT)
        expect(page.locator(".counter")).to_have_attribute("data-state", "scan")
    finally:
        other.close()


def test_a_customers_authorization_is_completed_with_the_shop_key(
    counter: Counter, browser: Browser
) -> None:
    world = counter.world
    before = counter.cents(world.alice.pk)
    expires = world.node.wall_ms + 600_000
    auth = t.Authorization(world.alice.pk, CAMPAIGN, world.bakery.pk, 2_000, expires,
                           bytes(16))  # fmt: skip
    uri = SignedAuthorization(world.chain.upper(), auth, auth.sign(world.alice.signer,
                                                                   world.chain)).uri()  # fmt: skip
    page = counter_page(browser, counter)
    keep_shop_key(page, world.bakery.signer)
    page.get_by_label("Ou tapez le code du chèque").fill(uri)
    page.get_by_role("button", name="Lire ce code").click()
    expect(page.get_by_role("heading", name="Autorisation du client")).to_be_visible()
    expect(page.get_by_test_id("limit-label")).to_have_text("Maximum autorisé")
    expect(page.get_by_test_id("remaining")).to_have_text(money(2_000))
    page.get_by_label("Montant (€)").fill("20,01")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.locator("#error-text")).to_contain_text(f"autorisé ({money(2_000)})")
    page.get_by_label("Montant (€)").fill("18,40")
    page.locator("#charge-passphrase").fill(PASSPHRASE)
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.get_by_test_id("receipt-amount")).to_have_text(money(1_840), timeout=WAIT_MS)
    expect(page.get_by_test_id("receipt-left")).to_have_text(money(before - 1_840))
    assert counter.cents(world.alice.pk) == before - 1_840

    page.get_by_role("button", name="Client suivant").click()  # the same code, once more
    page.get_by_label("Ou tapez le code du chèque").fill(uri)
    page.get_by_role("button", name="Lire ce code").click()
    page.get_by_label("Montant (€)").fill("1")
    page.locator("#charge-passphrase").fill(PASSPHRASE)
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.locator("#error-text")).to_have_text("Cette autorisation a déjà été utilisée.")
    assert counter.cents(world.alice.pk) == before - 1_840


def test_expired_and_wrong_category_in_the_merchants_words(
    counter: Counter, browser: Browser
) -> None:
    page = counter_page(browser, counter)
    page.get_by_label("Ou tapez le code du chèque").fill(counter.expired)
    page.get_by_role("button", name="Lire ce code").click()
    expect(page.locator("#error-text")).to_have_text("Ce chèque est expiré ou pas encore valable.")

    letter = counter.letters[2]
    before = counter.cents(counter.voucher_key(letter))
    page = counter_page(browser, counter, shop=counter.world.supplier.signer)  # a wholesaler
    page.get_by_label("Ou tapez le code du chèque").fill(counter.uri(letter))
    page.get_by_role("button", name="Lire ce code").click()
    page.get_by_label("Montant (€)").fill("1")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.locator("#error-text")).to_have_text(
        "Ce chèque n'est pas valable dans ce commerce (zone ou catégorie)."
    )
    assert counter.cents(counter.voucher_key(letter)) == before


def test_a_shop_name_is_data_in_the_page_and_its_script(counter: Counter, browser: Browser) -> None:
    page = counter_page(browser, counter, shop=counter.hostile)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect(page.locator("h1 .shop")).to_have_text(HOSTILE)
    assert (
        page.evaluate("JSON.parse(document.getElementById('counter-config').textContent).shop")
        == HOSTILE
    )
    assert page.locator("b").count() == 0 and page.locator("body script").count() == 0
    page.reload()
    expect(page.locator(".counter")).to_have_attribute("data-state", "scan", timeout=WAIT_MS)
    assert dialogs == []


def test_a_charge_not_yet_in_a_block_is_asked_again_with_the_same_bytes(
    counter: Counter, browser: Browser
) -> None:
    letter = counter.letters[2]
    before = counter.cents(counter.voucher_key(letter))
    page = counter_page(browser, counter)
    page.get_by_label("Ou tapez le code du chèque").fill(counter.uri(letter))
    page.get_by_role("button", name="Lire ce code").click()
    sent: list[str] = []

    def first_not_in_a_block(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "")["tx"])
        if len(sent) == 1:  # admitted, its block not made yet (the node's 202)
            route.fulfill(status=202, json={"accepted": True, "tx_id": None, "result": "OK",
                                            "code": 0, "height": None})  # fmt: skip
        else:
            route.continue_()

    page.route("**/v1/transactions?wait=true", first_not_in_a_block)
    page.get_by_label("Montant (€)").fill("1")
    page.get_by_role("button", name="Confirmer l'encaissement").click()
    expect(page.get_by_test_id("receipt-amount")).to_have_text(money(100))
    assert len(sent) == 2 and sent[0] == sent[1]
    assert counter.cents(counter.voucher_key(letter)) == before - 100
