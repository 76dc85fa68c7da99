"""Drug traceability through the real node process and its socket: verify with a checked Merkle proof."""

from __future__ import annotations

import json

import pytest
from biip.checksums import gs1_standard_check_digit

from hcnode import crypto
from hcnode.apps.drugs.app import AS_PURPOSE, query_proof
from hcnode.chain import build_tx
from hcnode.wallet.cli import main as wallet_main
from hcnode.wallet.client import RpcClient
from hcnode.wallet.drugs import verify_answer_proof
from hcnode.wallet.keystore import Keystore

pytestmark = pytest.mark.slow

GTIN = "0950600013435" + str(gs1_standard_check_digit("0950600013435"))


def act(client: RpcClient, node, key: crypto.PrivateKey, tx_type: str, payload: dict, expect: str = "ok") -> dict:
    nonce = client.call("account.nonce", key=key.public.hex())["next"]
    submitted = client.call("tx.submit", tx=build_tx(key, node.chain_id, tx_type, nonce, payload).hex())
    outcome = client.call("tx.wait", tx=submitted["tx"], timeout_ms=10_000)
    assert outcome["status"] == "committed", outcome
    assert outcome["receipt"]["status"] == expect, outcome["receipt"]
    return outcome["receipt"]  # type: ignore[no-any-return]


def signed(client: RpcClient, node, key: crypto.PrivateKey, **params) -> dict:
    height = client.call("block.head")["height"]
    proof_params = {**params, "as_key": key.public, "as_height": height}
    sig = key.sign(node.chain_id, AS_PURPOSE, query_proof("drugs.verify", proof_params, height))
    return {**params, "as_key": key.public.hex(), "as_height": height, "as_sig": sig.hex()}


def test_pack_from_factory_to_pharmacy_verified_over_rpc_with_a_checked_proof(dev_node, tmp_path, capsys):
    keys = Keystore(dev_node.keystore)
    admin, acme = keys.load("admin", dev_node.passphrase), keys.load("acme-admin", dev_node.passphrase)
    pharmacy = crypto.PrivateKey.generate()
    with dev_node.client() as client:
        act(client, dev_node, admin, "registry.propose", {"action": {
            "kind": "org_add", "org": "corner-pharmacy", "name": "Corner", "org_kind": "pharmacy",
            "admins": [pharmacy.public]}})
        act(client, dev_node, acme, "registry.member_roles", {"member": "acme-pharma/admin-1",
                                                               "roles": ["admin", "supply_chain"]})
        act(client, dev_node, pharmacy, "registry.member_roles", {"member": "corner-pharmacy/admin-1",
                                                                   "roles": ["admin", "dispenser", "supply_chain"]})
        act(client, dev_node, acme, "drugs.product_register", {"gtin": GTIN, "name": "Amoxicillin",
                                                               "form": "capsule", "strength": "500 mg"})
        act(client, dev_node, acme, "drugs.commission", {"gtin": GTIN, "lot": "L1", "expiry": "2030-01-31",
                                                         "serials": [f"S{i}" for i in range(2000)]})
        units = [{"gtin": GTIN, "serial": "S7"}]
        act(client, dev_node, acme, "drugs.ship", {"to": "corner-pharmacy", "units": units})
        act(client, dev_node, pharmacy, "drugs.receive", {"units": units})

        anonymous = client.call("drugs.verify", scan=f"(01){GTIN}(21)S7(10)L1(17)300131")
        assert anonymous["verdict"] == "VERIFIED" and "trail" not in anonymous and "tx_proof" not in anonymous

        answer = client.call("drugs.verify", **signed(client, dev_node, pharmacy, scan=f"(01){GTIN}(21)S7"))
        assert answer["verdict"] == "VERIFIED" and answer["holder"] == "corner-pharmacy"
        assert [e["what"] for e in answer["trail"]] == ["commission", "ship", "receive"]
        checks = verify_answer_proof(answer)
        assert checks and all(checks.values()), checks
        assert answer["tx_proof"]["height"] == answer["trail"][-1]["height"]

        unknown = client.call("drugs.verify", gtin=GTIN, serial="NOPE")
        assert (unknown["verdict"], unknown["verificationFailureReason"]) == ("UNKNOWN_SERIAL",
                                                                               "No_match_GTIN_Serial")

    # The wallet: verify a raw DataMatrix scan, and a bad EPCIS file is refused before anything is sent.
    base = ["--socket", str(dev_node.socket), "--keystore", str(dev_node.keystore), "--json"]
    assert wallet_main([*base, "drugs", "verify", f"]d201{GTIN}21S7\x1d10L1"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "VERIFIED"
    bad = tmp_path / "bad.jsonld"
    bad.write_text('{"type": "EPCISDocument", "schemaVersion": "2.0"')
    assert wallet_main([*base, "drugs", "import", str(bad), "--key", "acme-admin"]) == 2
    assert "invalid JSON" in capsys.readouterr().err
    huge = tmp_path / "huge.jsonld"
    with huge.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    assert wallet_main([*base, "drugs", "import", str(huge), "--key", "acme-admin"]) == 2
    assert "at most" in capsys.readouterr().err
