"""Tollbooth's local stack: an embedded AWS (moto, or DynamoDB Local for tables) and an
HTTP gateway, both built from template.yaml so that local equals deployed."""
