"""The help people read, written from the command registry: every command with its forms and
options, one command in detail (`help <command>`), and the list a mistyped command is answered with.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.command_registry import REGISTRY, CommandSpec

__all__ = ["QUOTING", "command_help", "command_list", "help_text"]


def help_text(registry: Sequence[CommandSpec] = REGISTRY) -> str:
    """Every command of `registry`, how it is written, and each of its options."""
    lines = ["**Grok commands**", *(_help_line(spec) for spec in registry)]
    lines.append(
        f"Options are written `name:value` before the text. {QUOTING} A question may start with "
        "`ask`'s options: `defer:true why is the sky blue`. `help <command>` shows one command. "
        "Mention me or reply to my messages to keep talking; threads I answer in are conversations."
    )
    return "\n".join(lines)


QUOTING = 'A value with spaces is quoted: `schedule:"mon 09:00"`.'


def command_help(spec: CommandSpec) -> str:
    """One command: how it is written, what each of its options does, and how values are quoted."""
    lines = [f"**{spec.name}** — {spec.about}.", f"Usage: {spec.usages}"]
    for option in spec.all_options:
        required = " (required)" if option.required else ""
        about = f": {option.about}" if option.about else ""
        lines.append(f"• `{option.written}`{required}{about}")
    if spec.note:
        lines.append(spec.note)
    if spec.all_options:
        lines.append(f"Options come before the text. {QUOTING}")
    return "\n".join(lines)


def _help_line(spec: CommandSpec) -> str:
    line = f"• {' · '.join(f'`{form}`' for form in spec.forms())} — {spec.about}."
    listed = [o for o in spec.options if not o.required]  # required ones are in the forms
    if listed:
        described = (f"`{o.written}`" + (f" ({o.about})" if o.about else "") for o in listed)
        line += " Options: " + ", ".join(described) + "."
    return f"{line} {spec.note}" if spec.note else line


def command_list(registry: Sequence[CommandSpec] = REGISTRY) -> str:
    return "Commands: " + ", ".join(spec.name for spec in registry) + "."
