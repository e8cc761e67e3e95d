"""The example model: data, training, evaluation, inference and shipping, one step a module.

A linear scorer: ``score = weights · values + bias``; a positive score means label 1.
"""
