"""The domain: money, the catalog, pricing, the ledger's rules and its events. Pure Python:
no AWS, no HTTP, no settings; every rule of the ledger lives here."""
