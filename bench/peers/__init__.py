"""The bridge against what a user would run instead (`python -m bench.peers`).

This folder holds both the benchmark (Python) and the peers' own set-up (`package.json`,
`package-lock.json`, and the Node scripts `oidc_provider.mjs` and `cedar_pdp.mjs`).
"""
