"""Echo (test plugin): a verticals domain plugin (see README.md for the layout)."""

NAME = "echo"
