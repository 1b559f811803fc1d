"""Phoenix: disposable integration environments cloned from an anonymized golden image."""

__version__ = "0.1.0"
