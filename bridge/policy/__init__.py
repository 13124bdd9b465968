"""Policy authoring commands: `bridge policy validate | format | test | explain`.

They work on store folders (the same ones the server loads) and reuse the engine, so what
they accept, decide and explain is exactly what the server accepts, decides and explains:
stores are loaded with `load_store`, requests parsed by the functions the HTTP routes use and
decided by `CedarPDP`. This package only adds what authors need on top: positions for every
problem, authoring rules (`@id`, `@approval`), store test cases and readable explanations.
"""
