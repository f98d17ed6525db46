"""The merchant counter page (``/ui/merchant/counter``), phone first.

The page scans a voucher QR (``RLV1``) or a holder's authorization QR (``RLA1``)
with the phone's camera and decodes it in the browser (jsQR); it builds the
transaction body itself (canonical msgpack, ``static/counter.js``) and signs it
in the browser (tweetnacl): a voucher's ``pay`` with the voucher key read from
the QR, a refund or the completion of an authorization with the merchant's own
key, which stays on the phone (sealed with a passphrase in the browser's
storage). The node only serves the page and the public API it already has
(accounts, campaigns, transactions): it never sees a voucher seed nor the
merchant's key. docs/counter.md says who knows what.

The page's words are here (French and English); money and dates use the
dashboards' Belgian formats (``node.text.fmt``), repeated in the script.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api import dashboards, views
from node.api.access import Role, Viewer
from node.api.page_parts import PageParts
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import Domain
from node.text import fmt

PATH: Final = "/ui/merchant/counter"

# key: (French, English). The "err.*" keys are the ledger's result codes the merchant
# can meet at a counter, in the merchant's words.
TEXTS: Final[dict[str, tuple[str, str]]] = {
    "title": ("Caisse", "Counter"),
    "scan": ("Scanner un chèque", "Scan a voucher"),
    "scan.help": (
        "Montrez le code QR de la lettre, de l'e-mail ou du téléphone du client à la caméra.",
        "Hold the QR code of the letter, the e-mail or the customer's phone to the camera.",
    ),
    "scan.stop": ("Arrêter la caméra", "Stop the camera"),
    "scan.looking": ("Recherche d'un code QR…", "Looking for a QR code…"),
    "typed": ("Ou tapez le code du chèque", "Or type the voucher code"),
    "typed.go": ("Lire ce code", "Read this code"),
    "voucher": ("Chèque", "Voucher"),
    "authorization": ("Autorisation du client", "Customer's authorization"),
    "campaign": ("Campagne", "Campaign"),
    "valid_until": ("Valable jusqu'au", "Valid until"),
    "remaining": ("Solde restant", "Remaining balance"),
    "authorized_max": ("Maximum autorisé", "Authorized up to"),
    "amount": ("Montant (€)", "Amount (€)"),
    "charge_all": ("Encaisser tout le solde", "Charge what is left"),
    "confirm": ("Confirmer l'encaissement", "Confirm the charge"),
    "cancel": ("Annuler", "Cancel"),
    "sending": ("Envoi en cours… ne fermez pas la page.", "Sending… keep this page open."),
    "resuming": (
        "Un encaissement était en cours : vérification, sans nouveau débit.",
        "A charge was under way: checking it, without charging again.",
    ),
    "receipt": ("Reçu", "Receipt"),
    "shop": ("Commerce", "Shop"),
    "time": ("Heure", "Time"),
    "tx_id": ("N° de transaction", "Transaction id"),
    "left_after": ("Solde restant du chèque", "Voucher's remaining balance"),
    "refund": ("Rembourser", "Refund"),
    "refund.amount": ("Montant à rembourser (€)", "Amount to refund (€)"),
    "refund.done": ("Remboursé", "Refunded"),
    "next": ("Client suivant", "Next customer"),
    "retry": ("Réessayer (sans risque de double débit)", "Retry (cannot charge twice)"),
    "key.title": ("Clé du commerce sur ce téléphone", "Shop key on this phone"),
    "key.help": (
        "Nécessaire pour rembourser et pour les autorisations de client. La clé reste sur ce "
        "téléphone, scellée par votre phrase secrète.",
        "Needed to refund and for customers' authorizations. The key stays on this phone, "
        "sealed with your passphrase.",
    ),
    "key.seed": (
        "Clé du commerce : scannez le QR de « relance-wallet key export NOM » ci-dessus, ou "
        "collez son texte (ou les 64 caractères de « key show NOM --seed »)",
        "Shop key: scan the QR code of 'relance-wallet key export NAME' above, or paste its "
        "text (or the 64 characters of 'key show NAME --seed')",
    ),
    "key.code": (
        "Code à usage unique (affiché par key export)",
        "One-time code (printed by key export)",
    ),
    "key.bad_code": (
        "Ce code à usage unique n'ouvre pas cette clé.",
        "This one-time code does not open the key.",
    ),
    "key.scanned": (
        "Clé du commerce lue : tapez son code à usage unique et une phrase secrète.",
        "Shop key read: type its one-time code and a passphrase.",
    ),
    "key.passphrase": ("Phrase secrète", "Passphrase"),
    "key.save": ("Garder la clé sur ce téléphone", "Keep the key on this phone"),
    "key.forget": ("Oublier la clé", "Forget the key"),
    "key.present": ("Clé du commerce présente sur ce téléphone.", "Shop key kept on this phone."),
    "key.absent": ("Aucune clé du commerce sur ce téléphone.", "No shop key on this phone."),
    "key.wrong": (
        "Cette clé n'est pas celle du commerce connecté.",
        "This key is not the logged-in shop's key.",
    ),
    "key.bad_passphrase": ("Phrase secrète incorrecte.", "Wrong passphrase."),
    "key.needed": (
        "Gardez d'abord la clé du commerce sur ce téléphone (en bas de page).",
        "First keep the shop key on this phone (bottom of the page).",
    ),
    "err.not_code": (
        "Ce code n'est pas un chèque Relance ni une autorisation.",
        "This code is not a Relance voucher nor an authorization.",
    ),
    "err.check": (
        "Le code est abîmé (un caractère est faux) : scannez à nouveau.",
        "The code is damaged (a character is wrong): scan again.",
    ),
    "err.chain": (
        "Ce chèque est d'un autre registre que celui de ce commerce.",
        "This voucher belongs to another ledger than this shop's.",
    ),
    "err.empty": ("Ce chèque est déjà entièrement utilisé.", "This voucher is already used up."),
    "err.amount": (
        "Tapez un montant en euros, par ex. 12,50.",
        "Type an amount in euros, e.g. 12,50.",
    ),
    "err.too_much": (
        "Solde insuffisant : il reste {balance} sur ce chèque.",
        "Balance too low: {balance} is left on this voucher.",
    ),
    "err.unreachable": (
        "Le serveur de la commune ne répond pas. Réessayer ne débitera pas deux fois.",
        "The commune's server does not answer. Retrying cannot charge twice.",
    ),
    "err.camera": (
        "La caméra n'est pas disponible : autorisez-la ou tapez le code.",
        "The camera is not available: allow it or type the code.",
    ),
    "err.other": ("Refusé par le registre : {detail}", "Refused by the ledger: {detail}"),
    f"err.{Result.CAMPAIGN_NOT_ACTIVE.name}": (
        "Ce chèque est expiré ou pas encore valable.",
        "This voucher has expired or is not valid yet.",
    ),
    f"err.{Result.CAMPAIGN_CLOSED.name}": (
        "Cette campagne est clôturée : le chèque ne vaut plus rien.",
        "This campaign is closed: the voucher is no longer valid.",
    ),
    f"err.{Result.MERCHANT_NOT_ELIGIBLE.name}": (
        "Ce chèque n'est pas valable dans ce commerce (zone ou catégorie).",
        "This voucher cannot be used in this shop (zone or category).",
    ),
    f"err.{Result.INVALID_ZONE.name}": (
        "Ce chèque n'est pas valable dans la zone de ce commerce.",
        "This voucher cannot be used in this shop's zone.",
    ),
    f"err.{Result.MERCHANT_SUSPENDED.name}": (
        "Ce commerce est suspendu par la commune.",
        "This shop is suspended by the commune.",
    ),
    f"err.{Result.UNKNOWN_MERCHANT.name}": (
        "Ce commerce n'est pas enregistré par la commune.",
        "This shop is not registered by the commune.",
    ),
    f"err.{Result.INSUFFICIENT_FUNDS.name}": (
        "Solde insuffisant : il reste {balance} sur ce chèque.",
        "Balance too low: {balance} is left on this voucher.",
    ),
    f"err.{Result.BAD_SEQUENCE.name}": (
        "Ce chèque vient d'être utilisé ailleurs : scannez-le à nouveau.",
        "This voucher was just used elsewhere: scan it again.",
    ),
    f"err.{Result.AUTHORIZATION_USED.name}": (
        "Cette autorisation a déjà été utilisée.",
        "This authorization was already used.",
    ),
    f"err.{Result.AUTHORIZATION_EXPIRED.name}": (
        "Cette autorisation a expiré : le client doit en faire une nouvelle.",
        "This authorization has expired: the customer must make a new one.",
    ),
    f"err.{Result.AUTHORIZATION_EXCEEDED.name}": (
        "Le montant dépasse ce que le client a autorisé ({balance}).",
        "The amount is more than the customer authorized ({balance}).",
    ),
    f"err.{Result.BAD_AUTHORIZATION.name}": (
        "Cette autorisation n'est pas valable (signature ou commerce).",
        "This authorization is not valid (signature or shop).",
    ),
    f"err.{Result.REFUND_EXCEEDS_PAYMENTS.name}": (
        "On ne peut rembourser plus que ce qui a été payé.",
        "You cannot refund more than was paid.",
    ),
}


def texts(lang: fmt.Lang) -> dict[str, str]:
    return {key: pair[0] if lang == "fr" else pair[1] for key, pair in TEXTS.items()}


def add_routes(app: web.Application, api: PageParts) -> None:
    app.router.add_get(PATH, dashboards.guarded(api, counter_page, frozenset({Role.MERCHANT})))


async def counter_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    account = views.account(api.ledger.store, viewer.key)
    words = texts(lang)
    config = {
        "chain_id": api.chain_id,
        "merchant": viewer.key.hex(),
        "shop": account.name or "",
        "lang": lang,
        "tx_version": t.VERSION,
        "kinds": {
            "pay": int(t.Kind.PAY),
            "pay_authorized": int(t.Kind.PAY_AUTHORIZED),
            "refund": int(t.Kind.REFUND),
        },
        "domains": {
            "tx": Domain.TX.value.decode(),
            "authorization": Domain.AUTHORIZATION.value.decode(),
        },
        "texts": words,
    }
    response = dashboards.render(
        request,
        lang,
        "counter.html",
        viewer=viewer,
        account=account,
        config=config,
        c=words.__getitem__,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
