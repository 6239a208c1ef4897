"""Revision scripts of the node store; this file only makes the folder a package."""
