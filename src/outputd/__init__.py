"""outputd: a print-output daemon from storefront job ticket to RIP hot folder."""

__version__ = "0.1.0"
