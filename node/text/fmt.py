"""Belgian formats and the dashboards' two languages (French first, English).

Numbers: ``1 234,56 €`` (no-break spaces: a group separator and before the
sign). Dates: ``29/11/2026`` and ``29/11/2026 14:05`` in Europe/Brussels time.
Both languages use the Belgian formats; only the words change.

``last_valid_day`` is the one rule for the last day a campaign's vouchers work, which
letters, the wallet and the dashboards all print.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from datetime import date as Date
from typing import Final, Literal
from zoneinfo import ZoneInfo

Lang = Literal["fr", "en"]
LANGS: Final[tuple[Lang, ...]] = ("fr", "en")
NBSP: Final = "\u00a0"
BRUSSELS: Final = ZoneInfo("Europe/Brussels")


def group(n: int) -> str:
    """``1234567`` -> ``1 234 567`` (no-break spaces)."""
    sign = "-" if n < 0 else ""
    digits = str(abs(n))
    groups = []
    while len(digits) > 3:
        groups.append(digits[-3:])
        digits = digits[:-3]
    groups.append(digits)
    return sign + NBSP.join(reversed(groups))


def money(cents: int) -> str:
    """``123456`` -> ``1 234,56 €``."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}{group(euros)},{rest:02d}{NBSP}€"


def date(ms: int) -> str:
    return _local(ms).strftime("%d/%m/%Y")


def last_valid_day(valid_until_ms: int) -> Date:
    """The last Brussels calendar day on which a voucher works all day long: the day
    before the one in which the (exclusive) end instant falls. An end at midnight makes
    the day before it the last; an end early on a morning (``--until +90d`` typed at
    6 a.m.) makes the day before that morning the last, never a day cut short."""
    return (_local(valid_until_ms) - timedelta(days=1)).date()


def local_day(ms: int) -> Date:
    """The Brussels calendar day ``ms`` falls in (a campaign's first day, for one)."""
    return _local(ms).date()


def day_start_ms(day: Date) -> int:
    """The instant ``day`` begins in Brussels (ms since the epoch)."""
    return int(datetime.combine(day, time(0), BRUSSELS).timestamp() * 1000)


def last_day(valid_until_ms: int) -> str:
    """``last_valid_day`` as the dashboards print dates (``31/03/2026``)."""
    return last_valid_day(valid_until_ms).strftime("%d/%m/%Y")


def datetime_text(ms: int) -> str:
    return _local(ms).strftime("%d/%m/%Y %H:%M")


def iso(ms: int) -> str:
    return _local(ms).isoformat(timespec="seconds")


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(BRUSSELS)


def short_key(hex_key: str) -> str:
    return hex_key[:8] + "…" + hex_key[-4:]


MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # key: (French, English)
    "app": ("Relance", "Relance"),
    "skip": ("Aller au contenu", "Skip to content"),
    "login.title": ("Connexion", "Log in"),
    "login.intro": (
        "Collez le jeton imprimé par « relance-wallet login », ou ouvrez le lien de votre lettre.",
        "Paste the token printed by “relance-wallet login”, or open the link on your letter.",
    ),
    "login.token": ("Jeton d'accès", "Access token"),
    "login.submit": ("Se connecter", "Log in"),
    "logout": ("Se déconnecter", "Log out"),
    "lang.switch": ("English", "Français"),
    "role.holder": ("Bénéficiaire", "Holder"),
    "role.merchant": ("Commerçant", "Merchant"),
    "counter.open": ("Encaisser un chèque (caisse)", "Charge a voucher (counter)"),
    "role.issuer": ("Commune", "Commune"),
    "role.bank": ("Banque", "Bank"),
    "role.auditor": ("Auditeur", "Auditor"),
    "account": ("Compte", "Account"),
    "height": ("Hauteur", "Height"),
    "balance": ("Solde", "Balance"),
    "balances": ("Soldes", "Balances"),
    "history": ("Historique", "History"),
    "campaign": ("Campagne", "Campaign"),
    "campaigns": ("Campagnes", "Campaigns"),
    "amount": ("Montant", "Amount"),
    "date": ("Date", "Date"),
    "kind": ("Type", "Kind"),
    "counterparty": ("Contrepartie", "Counterparty"),
    "memo": ("Communication", "Memo"),
    "none": ("Aucune opération pour le moment.", "Nothing yet."),
    "no_balance": ("Aucun solde.", "No balance."),
    "valid_until": ("Valable jusqu'au", "Valid through"),
    "vouchers.title": ("État des chèques", "Voucher status"),
    "vouchers.back": ("← Tableau de bord de la commune", "← Commune dashboard"),
    "vouchers.explain": (
        "Par clé attribuée : ce que le registre sait. Les numéros de série et les canaux "
        "d'envoi sont dans votre carnet de chèques : relance-wallet issuer vouchers les joint.",
        "Per allocated key: what the ledger knows. Serial numbers and delivery channels are "
        "in your voucher book: relance-wallet issuer vouchers joins them.",
    ),
    "vouchers.status": ("État", "Status"),
    "vouchers.counts": ("Chèques par état", "Vouchers per status"),
    "vouchers.keys": ("Clés attribuées", "Allocated keys"),
    "vouchers.key": ("Clé", "Key"),
    "vouchers.left": ("Solde", "Left"),
    "vouchers.replaced_by": ("Remplacé par", "Replaced by"),
    "vouchers.csv": ("Exporter en CSV", "Export as CSV"),
    "vouchers.link": (
        "État des chèques (intacts, utilisés, réémis…)",
        "Voucher status (untouched, used, reissued…)",
    ),
    "vouchers.partial": (
        "Liste partielle : la campagne dépasse ce qu'une page lit.",
        "Partial list: the campaign is larger than one page reads.",
    ),
    "vstatus.untouched": ("Intact", "Untouched"),
    "vstatus.partly_used": ("Partiellement utilisé", "Partly used"),
    "vstatus.used": ("Utilisé", "Used"),
    "vstatus.reissued": ("Réémis", "Reissued"),
    "vstatus.expired": ("Expiré", "Expired"),
    "spend.title": ("Où dépenser", "Where to spend"),
    "spend.search": ("Nom du commerce", "Shop name"),
    "spend.category": ("Catégorie", "Category"),
    "spend.zone": ("Quartier", "Zone"),
    "spend.all": ("Toutes", "All"),
    "spend.yours": ("le vôtre", "yours"),
    "spend.find": ("Chercher", "Search"),
    "spend.found": ("commerce(s) acceptent vos chèques", "shop(s) accept your vouchers"),
    "spend.near_first": ("d'abord votre quartier", "your zone first"),
    "spend.none_match": ("Aucun commerce ne correspond.", "No shop matches."),
    "spend.nothing": (
        "Aucun commerce à montrer : plus de solde à dépenser, ou la campagne est terminée.",
        "No shop to show: nothing left to spend, or the campaign has ended.",
    ),
    "spend.pages": ("Pages des commerces", "Shop pages"),
    "spend.previous": ("Précédente", "Previous"),
    "spend.next": ("Suivante", "Next"),
    "spend.page": ("Page", "Page"),
    "spend.truncated": (
        "Liste partielle : la commune a enregistré plus de commerces que cette page n'en lit.",
        "Partial list: the commune registered more shops than this page reads.",
    ),
    "funded": ("Financé", "Funded"),
    "budget": ("Budget non attribué", "Unallocated budget"),
    "allocated": ("Attribué", "Allocated"),
    "spent": ("Dépensé", "Spent"),
    "refunded": ("Remboursé", "Refunded"),
    "unspent": ("Non dépensé", "Unspent"),
    "returned": ("Récupéré", "Returned"),
    "withdrawn": ("Retiré", "Withdrawn"),
    "redeemed": ("Converti en euros", "Redeemed"),
    "settled": ("Versé", "Settled"),
    "pending": ("En attente", "Pending"),
    "payout_returned": ("Refusé par la banque, recrédité", "Returned by the bank, re-credited"),
    "escrow": ("Provision à la banque", "Escrow at the bank"),
    "totals": ("Totaux de la commune", "Commune totals"),
    "chart": ("Dépenses par campagne", "Spending per campaign"),
    "transactions": ("Opérations", "Transactions"),
    "filter": ("Filtrer", "Filter"),
    "all": ("Toutes", "All"),
    "export": ("Exporter en CSV", "Export as CSV"),
    "merchants": ("Commerçants", "Merchants"),
    "more_merchants": ("Commerçants suivants", "More merchants"),
    "analytics_link": (
        "Analyses : où et comment les chèques sont dépensés",
        "Analytics: where and how the vouchers are spent",
    ),
    "name": ("Nom", "Name"),
    "category": ("Catégorie (NACE)", "Category (NACE)"),
    "zone": ("Quartier", "Zone"),
    "status": ("État", "Status"),
    "active": ("Actif", "Active"),
    "suspended": ("Suspendu", "Suspended"),
    "received": ("Paiements reçus", "Payments received"),
    "transfers": ("Transferts", "Transfers"),
    "payouts": ("Versements", "Payouts"),
    "chain": ("Chaîne", "Chain"),
    "validators": ("Validateurs", "Validators"),
    "power": ("Poids", "Power"),
    "blocks": ("Derniers blocs", "Latest blocks"),
    "block_hash": ("Empreinte", "Hash"),
    "round": ("Tour", "Round"),
    "signatures": ("Signatures", "Signatures"),
    "time": ("Heure du bloc", "Block time"),
    "state_root": ("Racine d'état", "State root"),
    "live": ("Mis à jour en direct", "Updated live"),
    "forbidden": ("Accès refusé", "Access refused"),
    "forbidden.detail": (
        "Ce tableau de bord n'est pas celui de votre rôle.",
        "This dashboard is not the one of your role.",
    ),
    "more": ("Plus anciennes", "Older"),
    "kind.pay": ("Paiement", "Payment"),
    "kind.pay_authorized": ("Paiement autorisé", "Authorised payment"),
    "kind.refund": ("Remboursement", "Refund"),
    "kind.allocate": ("Attribution", "Allocation"),
    "kind.sweep": ("Regroupement", "Sweep"),
    "kind.transfer": ("Transfert", "Transfer"),
    "kind.redeem": ("Conversion", "Redemption"),
    "kind.settle": ("Versement", "Settlement"),
    "kind.fund": ("Provision", "Funding"),
    "kind.withdraw": ("Retrait", "Withdrawal"),
    "kind.create_campaign": ("Création de campagne", "Campaign created"),
    "kind.close_campaign": ("Clôture de campagne", "Campaign closed"),
    "kind.register_merchant": ("Inscription commerçant", "Merchant registered"),
    "kind.update_merchant": ("Modification commerçant", "Merchant updated"),
    "kind.suspend_merchant": ("Suspension commerçant", "Merchant suspended"),
    "kind.reissue": ("Réémission", "Reissue"),
    "kind.evidence": ("Preuve de faute", "Evidence"),
    "kind.admit_issuer": ("Admission d'un émetteur", "Issuer admitted"),
    "kind.change_validators": ("Changement de validateurs", "Validators changed"),
    "kind.return_payout": ("Versement refusé, recrédité", "Payout returned"),
    "kind.consent_zones": ("Consentement à une région", "Consent to a region"),
    "kind.schedule_upgrade": ("Mise à jour du protocole planifiée", "Protocol upgrade scheduled"),
}

# NACE divisions (the first two digits of a shop's category), for people: letters, pages.
NACE: Final[dict[str, tuple[str, str]]] = {
    "10": ("alimentation (fabrication)", "food manufacturing"),
    "45": ("garages et commerce automobile", "garages and car trade"),
    "46": ("commerce de gros", "wholesale"),
    "47": ("commerce de détail", "retail"),
    "55": ("hébergement", "accommodation"),
    "56": ("restauration et cafés", "restaurants and cafés"),
    "59": ("cinéma", "cinema"),
    "77": ("location", "rental"),
    "85": ("enseignement", "education"),
    "86": ("santé", "health"),
    "90": ("arts et spectacles", "arts and entertainment"),
    "91": ("bibliothèques et musées", "libraries and museums"),
    "93": ("sport et loisirs", "sport and leisure"),
    "95": ("réparation", "repair"),
    "96": (
        "services à la personne (coiffure, soins...)",
        "personal services (hairdressing, care...)",
    ),
}
MESSAGES.update({f"nace.{division}": names for division, names in NACE.items()})


def translate(lang: Lang, key: str, messages: dict[str, tuple[str, str]] = MESSAGES) -> str:
    """``key``'s words in ``lang`` from ``messages`` (a page's own table may be given)."""
    pair = messages.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "fr" else pair[1]
