"""Reference data the domain checks against, each file with its source and licence."""
