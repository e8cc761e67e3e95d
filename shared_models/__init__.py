"""verticals.shared_models"""
