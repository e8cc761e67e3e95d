"""Card-fraud scoring: transactions in, fraud probability, decision and reasons out; labels
from analysts feed the card's and terminal's delayed windows.

The rooms of the domain template (``domains/README.md``):

- ``plugin``: the Domain object; ``settings``: ``VERTICALS_FINANCE_*``;
- ``schemas`` / ``tables`` (+ ``migrations/``): what crosses the API / what is stored;
- ``service``: scoring, labels and queries (no HTTP, no Streamlit), with ``state`` (the card and
  terminal state rows, one upsert-and-read per batch), ``decision`` (expected-cost decision and
  reason phrases) and ``runtime`` (the micro-batched scorer);
- ``api`` / ``page`` / ``cli`` / ``bench``: the faces of the domain;
- ``model/``: data, features, training and backtest, evaluation, the fraud model, shipping and
  the production model, the threshold what-if, compression.
"""
