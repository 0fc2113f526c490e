"""Architecture tests: the layering rules, the docs that are generated or checked against
the code, and the rules the tests themselves follow.  No shared fixtures yet."""
