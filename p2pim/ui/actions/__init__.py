"""What the user's commands do: handler functions by feature (`chat`, `rooms`, `files`,
`peers`, `profile`) over the `UiContext` Protocol (`context`), and the tables that map
slash commands and key/palette actions to them (`table`)."""
