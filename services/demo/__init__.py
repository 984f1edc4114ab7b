"""Synthetic demo data: Malang workers as the city registered them on 25 Nov 2025."""
