"""Bounds on the size of a rule: a rule is user input that becomes a query."""

MAX_TEXT = 20_000  # characters of the text form
MAX_NODES = 300  # conditions and groups, counting the filters inside sources
MAX_DEPTH = 12  # nesting of groups
MAX_LIST = 500  # values in one `in (...)`
MAX_STRING = 500  # characters of one text value
MAX_AMOUNT = 36_500  # e.g. "in last 36500 days": a hundred years
MAX_DIGITS = 15  # significant digits of a number: exact in a double, so JSON keeps it
MAX_NUMBER = 10**12
MAX_SEGMENT_DEPTH = 8  # segments referring to segments referring to …
