"""Usage function: charges batches of usage that AI workers send through SQS."""

from tollbooth.handlers import usage_handler

lambda_handler = usage_handler
