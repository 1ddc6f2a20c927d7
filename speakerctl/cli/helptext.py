"""Command help in the language in use: typer reads a command's help from its docstring, which gettext
cannot see, so `translate(app)` hands typer each command's docstring through `_()`.

`extract` is the Babel extractor for `speakerctl/cli` (babel.cfg): the `_()` strings as Babel's Python
extractor finds them, plus the docstrings of the commands, so both land in the catalogue.
"""

from __future__ import annotations

import ast
import inspect
import io
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any, cast

import typer
import typer.rich_utils
from babel.messages.extract import extract_python

from speakerctl.i18n import _

Extracted = tuple[Any, ...]
"""(line number, function name, message or messages, comments), as Babel wants them."""


def translate(app: typer.Typer) -> None:
    """Give every command of `app` and of its sub-apps its docstring, translated, as its help."""
    for command in app.registered_commands:
        doc = inspect.getdoc(command.callback) if command.callback else None
        if command.help is None and doc:
            command.help = _(doc)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            translate(group.typer_instance)
    _translate_typer_words()


def _translate_typer_words() -> None:
    """typer's own words around the help (panel titles, defaults), which it translates with no catalogue."""
    words = typer.rich_utils
    words.ARGUMENTS_PANEL_TITLE = _("Arguments")
    words.OPTIONS_PANEL_TITLE = _("Options")
    words.COMMANDS_PANEL_TITLE = _("Commands")
    words.ERRORS_PANEL_TITLE = _("Error")
    words.ABORTED_TEXT = _("Aborted.")
    words.DEFAULT_STRING = _("[default: {}]")
    words.REQUIRED_LONG_STRING = _("[required]")
    words.DEPRECATED_STRING = _("(deprecated) ")
    words.ENVVAR_STRING = _("[env var: {}]")
    words.RICH_HELP = _("Try [blue]'{command_path} {help_option}'[/] for help.")


def extract(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str], options: dict[str, Any]
) -> Iterator[Extracted]:
    """Babel extraction method: `_()` calls and command docstrings of one CLI module."""
    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, cast(Any, options))
    tree = ast.parse(source)
    typed = _typer_aliases(tree)
    for node in tree.body:
        doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
        if isinstance(node, ast.FunctionDef) and doc and _is_command(node, typed):
            yield node.body[0].lineno, "_", doc, []


def _typer_aliases(tree: ast.Module) -> set[str]:
    """Module-level names bound to typer parameter types (`Json = Annotated[bool, typer.Option(...)]`)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and _is_parameter(ast.unparse(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _is_command(node: ast.FunctionDef, typed: set[str]) -> bool:
    """A public function decorated as a command or taking typer parameters."""
    if node.name.startswith("_") and not node.decorator_list:
        return False
    decorated = any(
        ".command" in ast.unparse(d) or ".callback" in ast.unparse(d) for d in node.decorator_list
    )
    notes = [ast.unparse(a.annotation) for a in node.args.args if a.annotation is not None]
    return decorated or any(_is_parameter(n) or n in typed for n in notes)


def _is_parameter(code: str) -> bool:
    return "typer.Option" in code or "typer.Argument" in code
