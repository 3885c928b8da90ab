"""CRM connectors: each CRM's own change notifications in, contract events out.

`mapping` (per-tenant mapping and the shared result types), `hubspot`, `pipedrive` and
`salesforce_cdc` are pure: a vendor payload and a mapping in, contract events and
dead letters out, no I/O. `store` keeps the per-tenant configuration, status and dead
letters in Redis; `intake` records what was mapped through the ledger, dead-lettering
per notification what the ledger refuses. The adapters are the API routes
(services/api/connectors.py) and the Kafka consumers (`consumer`).
"""
