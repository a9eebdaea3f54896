"""Tests of the outbox, the mail worker and the emailed-link flows, with a real SMTP server."""
