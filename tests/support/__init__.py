"""What keyscope's own tests and benchmarks need and a dapp does not: a throwaway PostgreSQL server
(:mod:`support.postgres`), third-party ERC-7579 accounts on a local node (:mod:`support.accounts`), an
ERC-7562 checker of validation traces (:mod:`support.erc7562`) and the test victims of ``contracts/test/``
deployed on a local node (:mod:`support.victims`).

Not shipped: it lives under ``tests/`` and imports keyscope, never the other way round. pytest puts
``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml); the benchmarks do the same.
"""
