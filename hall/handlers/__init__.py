"""One module per resource of the API (see hall/urls.py)."""
