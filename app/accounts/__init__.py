"""Accounts: logins (users), driver contracts (accounts), roles, sign-up, confirmation and password reset."""
