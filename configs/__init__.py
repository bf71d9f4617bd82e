"""The training recipes that ship with densemap (``densemap_models.config.load_config(name)``).

Each ``*.yaml`` here is a config by the name of its stem; see docs/training.md.
"""
