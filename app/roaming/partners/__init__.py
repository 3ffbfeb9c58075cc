"""Roaming partners: who they are, which parties they speak for, and the credentials handshake with them."""
