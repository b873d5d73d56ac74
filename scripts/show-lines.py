"""Prints claim lines (JSON lines on stdin) as one short row each."""
import json
import sys

for raw in sys.stdin:
    d = json.loads(raw)
    errors = ",".join(f["code"] for f in d["flags"] if f["severity"] == "error")
    cents = d.get("expected_payment_cents") or 0
    print(
        f"{d['claim_line_id']:<16} {d['status']:<12} {d['code']} units={d['units']} "
        f"mods={','.join(d['modifiers'])} ${cents / 100:.2f} {errors}"
    )
