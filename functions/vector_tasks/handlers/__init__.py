"""Lambda entry points. Each module is one function of template.yaml; routes stay a few lines."""
