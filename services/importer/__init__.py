"""`salespulse import`: history from the spreadsheets managers keep, replayed as contract events.

`mapping` reads the column-mapping file, `reading` the CSV or Excel rows, `convert` turns
rows into events (pure), `sending` delivers them in batches and maps refusals back to rows.
A CRM's change log (one row per change) has its own: `changelog_mapping`, `changelog_rows`
(rows → changes) and `changelog` (changes → events, in any row order the same).
"""
