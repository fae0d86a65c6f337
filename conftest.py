"""Root conftest: makes the fixtures shipped in circus.testing available to every test folder."""
