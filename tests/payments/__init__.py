"""Tests of the payment gateways."""
