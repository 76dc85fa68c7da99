"""Pure domain apps. Each module exposes ``APP`` (an ``hcnode.chain.App``); ``ALL_APPS`` lists them.

To add an app: write ``hcnode/apps/<name>.py`` with its tx types, schemas, handlers and
queries in one ``App`` value, add it here, and add its story to ``hcnode.demo``.
"""

from hcnode.apps import billing, registry, trials
from hcnode.apps.drugs.app import APP as DRUGS_APP
from hcnode.chain.app import AppSet

__all__ = ["ALL_APPS", "default_apps"]

ALL_APPS = (registry.APP, DRUGS_APP, billing.APP, trials.APP)


def default_apps() -> AppSet:
    return AppSet(ALL_APPS)
