"""verticals.domains"""
