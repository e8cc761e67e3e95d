"""The manufacturing models: data, features, training, evaluation, inference, shipping."""
