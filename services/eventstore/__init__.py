"""The event store's adapters over `eventsourcing`: the ledger that decides and records
events with the pure rules of `events/`, the recorder, the subjects' index, the codec."""
