"""The terminal UI: a Textual app over a node running in trio guest mode (textual's one
home in p2pim; docs/architecture.md, "Terminal UI")."""
