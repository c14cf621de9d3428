"""keyscope under ``ape test``: the pytest plugin (:mod:`keyscope.testing.plugin`) and its fixtures.

Importing the plugin needs pytest; its fixtures need ape (``pip install keyscope[ape]``).
"""
