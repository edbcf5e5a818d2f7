"""The only package that talks to the Messages API. Imports nothing from the project but settings."""
