"""Readers of the raw datasets (AIST++, MVHumanNet) and the demo dataset generator."""
