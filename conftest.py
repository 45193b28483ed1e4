"""Project-level pytest defaults for this repository (the plugin itself ships in the package)."""
