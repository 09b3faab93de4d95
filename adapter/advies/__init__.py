"""Adviesverzoeken: asking adviesorganisaties for advice and taking their advice in.

``store`` holds the adviesverzoeken and their states (uitgezet, gereed, ingetrokken, verlopen), ``service``
what every trigger calls (CLI, HTTP, a ZGW notification rule), ``relay`` what the delivery worker runs
(out through the adviseur's channel; the advice back in), ``web`` the zaaksysteem's HTTP endpoints.
"""
