"""What the test folders share: request builders, in-process apps, live servers, stores, catalogs, fixtures.

Test modules import from here (``from tests.support.api import customer``); fixtures defined here are
registered by the conftest of the folders that use them.
"""
