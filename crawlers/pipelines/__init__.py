"""Item pipelines, in order: `prepare` (validate, clean and mask through the shared
text preparation, canonical URL, pseudonymised author), `dedup` (exact duplicates and
what was published before), `publish` (to the bus; marked seen only once acknowledged).
"""
