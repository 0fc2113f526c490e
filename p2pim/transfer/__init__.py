"""File transfer: the lifecycle as one table (`state`), the control plane on the session
(`control`), downloads and uploads on connections of their own (`pull`, `push`), the
expiry of unanswered offers (`expiry`), and pure and disk helpers."""
