"""Bridges to other evaluation frameworks; nothing in darkmirror imports them."""
