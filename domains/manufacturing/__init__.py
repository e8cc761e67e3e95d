"""Predictive maintenance: remaining useful life of turbofans, failure risk of machine tools."""

NAME = "manufacturing"
