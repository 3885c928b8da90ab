"""A small typed client of the salespulse HTTP API for front ends and integrations.

    from salespulse_client import Client, event

    with Client("http://127.0.0.1:8000", api_key="sp_…") as sp:
        sp.send_many([event("lead.created", {"lead_id": "L-1", "source": "web"})])
        print(sp.funnel(team="T-1")["win_rate"])

Retries are safe: every event carries its id, the server's idempotency key, so a batch sent
twice is stored once (the second answer says `duplicate`).
"""

from salespulse_client.client import Client, Refused, SendResult, Unavailable, event

__all__ = ["Client", "Refused", "SendResult", "Unavailable", "event"]
