"""What we send CPOs (OCPI Sender): real-time authorization and its log, the token list, token pushes, commands."""
