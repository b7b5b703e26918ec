"""Command-line flags made from the node contract: one --flag per `NodeOptions` field.

`meshplane bootstrap` and `meshplane proxy` take a proxy's options as flags. Their names, help
texts and defaults come from the model's fields, so the CLI cannot drift from the API's query
parameters; the model checks the values before any request is sent.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from meshplane.cli.api_client import describe
from meshplane.cli.output import fail
from meshplane.model import NodeOptions

__all__ = ["node_options", "with_node_flags"]

Command = Callable[..., None]


def _base_type(annotation: Any) -> Any:
    """int for `Annotated[int, ...] | None`: the type a flag parses its value as."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    if not field.is_required() and field.default not in (None, (), False):
        text += f" (default: {field.default})"
    return text


def _flag(name: str) -> inspect.Parameter:
    """The parameter Typer reads as the flag of NodeOptions' field `name`."""
    field = NodeOptions.model_fields[name]
    flag = field.alias or name
    base = _base_type(field.annotation)
    if field.is_required():
        annotation: Any = Annotated[base, typer.Option(help=_help(field))]
        default: Any = inspect.Parameter.empty
    elif base is bool:
        option = typer.Option(f"--{flag.replace('_', '-')}", help=_help(field))
        annotation, default = Annotated[bool, option], False
    elif get_origin(base) is tuple:  # repeated: --label A=1 --label B=2
        help_text = _help(field).replace("(repeat)", "(repeatable)")
        annotation, default = Annotated[list[str] | None, typer.Option(help=help_text)], None
    else:
        annotation, default = Annotated[base | None, typer.Option(help=_help(field))], None
    return inspect.Parameter(
        flag, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def with_node_flags(*names: str) -> Callable[[Command], Command]:
    """Give a command the flags of NodeOptions' fields `names` before its own parameters.

    The command receives the flags given as `node: dict[str, Any]`, by flag name (the field's
    alias, if it has one); a flag left out is not in it, so the model's or the server's default
    applies.
    """

    def decorate(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True)
        keyword = inspect.Parameter.KEYWORD_ONLY
        rest = [p.replace(kind=keyword) for p in own.parameters.values() if p.name != "node"]
        flags = [_flag(name) for name in names]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            node = {}
            for flag in flags:
                value = kwargs.pop(flag.name)
                if value is not None and value is not False and value != []:
                    node[flag.name] = value
            command(node=node, **kwargs)

        parameters = [*flags, *rest]
        run.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate


def node_options(given: dict[str, Any]) -> NodeOptions:
    """Check the flags given as NodeOptions; exit 1 naming each field that is wrong."""
    try:
        return NodeOptions.model_validate(given)
    except ValidationError as exc:
        fail(describe(exc.errors()))
