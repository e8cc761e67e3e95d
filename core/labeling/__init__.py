"""Labeling: one annotation queue for every domain, active-learning priorities, label-issue
flags, and the retraining loop that learns from accepted labels.

A domain feeds items it wants labelled into the queue (:mod:`.queue`), records what people say
(annotations; the item keeps the accepted label and the agreement), and declares how to retrain
from them. See docs/labeling.md.
"""
