"""Ourselves: status, nick and the settings screen (what the profile keeps)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from pathlib import Path

from p2pim.api import STATUSES
from p2pim.settings import PREFERENCES, Settings
from p2pim.ui.actions.context import UiContext, try_do
from p2pim.ui.dialogs import Ask


async def set_status(ui: UiContext, status: str, text: str) -> None:
    if status not in STATUSES:
        ui.notify(f"a status is one of {', '.join(STATUSES)}", severity="error")
        return
    await try_do(ui, ui.node.set_status, status, text)
    ui.refresh_status()


def ask_status(ui: UiContext) -> None:
    current = ui.node.status

    def chosen(values: object) -> None:
        if isinstance(values, tuple):
            ui.spawn(set_status(ui, values[0].strip().lower() or "online", values[1]))

    fields = [
        ("online, away or busy", current.status),
        ("status text (optional)", current.status_text),
    ]
    hint = "Auto-away sets “away” after the idle time in Settings (F4)."
    ui.show(Ask("Your status", fields, hint=hint), chosen)


async def rename(ui: UiContext, nick: str) -> None:
    """Our new nick: the node tells every peer and keeps it in the profile."""
    if await try_do(ui, ui.node.set_nick, nick) and ui.settings:
        ui.settings.nick = nick


def show_settings(ui: UiContext) -> None:
    from p2pim.ui.settings_screen import SettingsScreen

    if ui.settings is None:
        ui.notify("Settings need a profile (this node runs without one).", severity="warning")
        return
    current = dataclasses.replace(ui.settings, nick=ui.node.config.nick)
    ui.show(SettingsScreen(current, ui.node.port), functools.partial(settings_saved, ui))


def settings_saved(ui: UiContext, result: object) -> None:
    if not isinstance(result, Settings):
        return
    if result.nick != ui.node.config.nick:  # live: peers see it at once
        ui.spawn(rename(ui, result.nick))
    # Only the preferences this screen owns: the node keeps the nick and status.
    preferences = {name: getattr(result, name) for name in PREFERENCES}
    ui.settings = dataclasses.replace(ui.settings or result, **preferences)
    if ui.profile is not None:
        remember = functools.partial(Settings.remember, ui.profile, **preferences)
        ui.spawn(asyncio.to_thread(remember))
    ui.node.set_download_dir(Path(result.download_dir))
    ui.notify("Saved. New interfaces apply from the next start.")


def show_help(ui: UiContext) -> None:
    from p2pim.ui.help import HelpScreen

    ui.show(HelpScreen())
