"""The Chalice app: one blueprint per capability (chalicelib/api/), the event handlers, the portal."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api.drecs import drecs
from chalicelib.api.handlers import handlers
from chalicelib.api.keys import keys
from chalicelib.api.ledger import ledger
from chalicelib.api.pull import pull
from chalicelib.api.readings import readings
from chalicelib.api.registry import registry
from chalicelib.api.trading import trading
from chalicelib.portal import portal

app = Chalice(app_name="drec-platform")
for blueprint in (registry, readings, ledger, drecs, trading, keys, pull, handlers, portal):
    app.register_blueprint(blueprint)
