"""A LocalChain with a small pharmaceutical supply chain, for the drugs app's pure tests."""

from __future__ import annotations

from typing import Any

from biip.checksums import gs1_standard_check_digit

from hcnode import crypto
from hcnode.chain import BlockInfo, execute
from hcnode.chain.execute import Limits
from hcnode.apps.drugs.app import AS_PURPOSE, query_proof
from tests.unit.chainkit import CHAIN_ID, LocalChain, key

MAX_TX_BYTES = 256 * 1024
"""What a chain that commissions 10,000 serials per transaction sets as ``limits.max_tx_bytes``."""

ORGS = (
    ("acme", "manufacturer", 1),
    ("globex", "manufacturer", 2),
    ("wholesale", "wholesaler", 3),
    ("pharm-a", "pharmacy", 4),
    ("pharm-b", "pharmacy", 5),
    ("fda", "regulator", 6),
    ("st-mary", "hospital", 7),
)
ROLES = {"acme": ["supply_chain"], "globex": ["supply_chain"], "wholesale": ["supply_chain"],
         "pharm-a": ["supply_chain", "dispenser"], "pharm-b": ["supply_chain", "dispenser"],
         "fda": ["inspector"], "st-mary": ["clinician"]}
PATIENT = "pt-" + "ab" * 12
RX = bytes(range(32))
EXPIRY = "2027-06-30"


def gtin(body: str) -> str:
    """A GTIN-14 with the right check digit for a 13-digit body."""
    return body + str(gs1_standard_check_digit(body))


def sscc(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


GTIN = gtin("0950600013435")
GTIN_B = gtin("0950600099999")
CASE = sscc("10614141000000001")
PALLET = sscc("10614141000000002")


class SupplyChain(LocalChain):
    """Organisations of every kind with an ``ops`` member holding the drugs roles."""

    def __init__(self) -> None:
        super().__init__(orgs=ORGS)
        self.ops = {org: key(300 + n) for org, _, n in ORGS}
        for org, _, _ in ORGS:
            receipt = self.run(self.org_admins[org], "registry.member_add",
                               {"org": org, "name": "ops", "key": self.ops[org].public, "roles": ROLES[org]})
            assert receipt["status"] == "ok", receipt

    def block(self, *txs: bytes) -> list[dict[str, Any]]:
        self.height += 1
        self.time_ms += 1000
        result = execute(self.state, self.apps, BlockInfo(CHAIN_ID, self.height, self.time_ms, key(1).public),
                         list(txs), self.root, Limits(max_tx_bytes=MAX_TX_BYTES))
        self.state.commit(result.writes)
        self.root = result.state_root
        return result.receipts

    def do(self, org: str, tx_type: str, payload: dict[str, Any], expect: str | None = "ok") -> dict[str, Any]:
        receipt = self.run(self.ops[org], tx_type, payload)
        if expect == "ok":
            assert receipt["status"] == "ok", receipt
        elif expect is not None:
            assert receipt["status"] == "rejected" and receipt["code"] == expect, receipt
        return receipt

    def product(self, g: str = GTIN, org: str = "acme") -> None:
        self.do(org, "drugs.product_register", {"gtin": g, "name": "Amoxicillin", "form": "capsule",
                                                "strength": "500 mg"})

    def commission(self, serials: list[str], g: str = GTIN, lot: str = "L1", expiry: str = EXPIRY,
                   org: str = "acme", expect: str | None = "ok") -> dict[str, Any]:
        return self.do(org, "drugs.commission", {"gtin": g, "lot": lot, "expiry": expiry, "serials": serials},
                       expect)

    def units(self, *serials: str, g: str = GTIN) -> list[dict[str, str]]:
        return [{"gtin": g, "serial": s} for s in serials]

    def move(self, serials: list[str], src: str, dst: str) -> None:
        self.do(src, "drugs.ship", {"to": dst, "units": self.units(*serials)})
        self.do(dst, "drugs.receive", {"units": self.units(*serials)})

    def verify(self, as_org: str | None = None, **params: Any) -> dict[str, Any]:
        if as_org is not None:
            signer = self.ops[as_org]
            params = {**params, "as_key": signer.public, "as_height": self.height}
            params["as_sig"] = signer.sign(CHAIN_ID, AS_PURPOSE, query_proof("drugs.verify", params,
                                                                                self.height))
        return self.query("drugs.verify", **params)  # type: ignore[no-any-return]

    def signed(self, name: str, org: str, signer: crypto.PrivateKey | None = None, **params: Any) -> Any:
        signer = signer or self.ops[org]
        params = {**params, "as_key": signer.public, "as_height": self.height}
        params["as_sig"] = signer.sign(CHAIN_ID, AS_PURPOSE, query_proof(name, params, self.height))
        return self.query(name, **params)
