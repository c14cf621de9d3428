"""keyscope under ``ape test``: fixtures, the local deployment, and an in-process bundler.

Importing this package needs ape (``pip install keyscope[ape]``).
"""
