"""verticals.apps"""
