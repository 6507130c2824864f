"""HTTP adapter: Powertools routers, authorization and the one error map."""
