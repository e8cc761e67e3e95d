"""The fraud model: data loading and checks, features (one code path offline and online),
training and selection (rolling backtest), evaluation, shipping and the production model, the
threshold what-if, and compression."""
