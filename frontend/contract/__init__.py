"""The SenseID contract as data (../shared/docs/CONTRACT.md): codes, messages, limits, fields."""
