"""Adapters: the ports served by DynamoDB, EventBridge and SQS, and the in-memory twin."""
