"""Expiry function: the scheduled sweep that writes off expired credit lots."""

from tollbooth.handlers import expiry_handler

lambda_handler = expiry_handler
