"""Figures drawn from results files only."""
