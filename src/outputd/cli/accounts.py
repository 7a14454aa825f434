"""`outputd user …` and `outputd token …` (DESIGN §11): accounts for the board and the API."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from outputd.cli.context import EXIT_OK, Context, Usage
from outputd.ops import accounts


def _password(args: argparse.Namespace) -> str:
    """The new password: the first line of standard input, or asked for twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("the same again: ") != first:
        raise Usage("the two passwords differ; nothing was changed")
    return first


def cmd_user(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd user add|passwd|remove|list`."""
    if args.action == "add":
        user = accounts.add_user(ctx.store, ctx.caller, args.name, args.role,
                                 args.storefront, _password(args))
        shops = ", ".join(user.storefronts) or "every storefront"
        print(f"user {user.name} added as {user.role} for {shops}")
    elif args.action == "passwd":
        accounts.set_password(ctx.store, ctx.caller, args.name, _password(args))
        print(f"password of {args.name} changed; their sessions have ended")
    elif args.action == "remove":
        accounts.remove_user(ctx.store, ctx.caller, args.name)
        print(f"user {args.name} removed; their sessions have ended")
    else:
        _list(ctx, args, "users")
    return EXIT_OK


def cmd_token(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd token add|revoke|list`; `add` prints the token alone on one line."""
    if args.action == "add":
        print(accounts.add_token(ctx.store, ctx.caller, args.name, args.role,
                                 args.storefront))
    elif args.action == "revoke":
        accounts.revoke_token(ctx.store, ctx.caller, args.name)
        print(f"token {args.name} revoked")
    else:
        _list(ctx, args, "tokens")
    return EXIT_OK


def _list(ctx: Context, args: argparse.Namespace, which: str) -> None:
    found = accounts.listing(ctx.store, ctx.caller)[which]
    if args.json:
        print(json.dumps(found, indent=2))
        return
    for item in found:
        shops = ", ".join(item["storefronts"]) or "every storefront"
        gone = "  (revoked)" if item.get("revoked_at") else ""
        print(f"{item['name']:<24} {item['role']:<10} {shops}{gone}")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The `user` and `token` commands with their actions."""
    from outputd.ops.access import ROLES

    for noun, func, text in (("user", cmd_user, "people who log in on the board"),
                             ("token", cmd_token, "tokens for machines using the API")):
        p = sub.add_parser(noun, parents=[common], help=text)
        actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = actions.add_parser("add", parents=[common], help=f"add a {noun}")
        add.add_argument("name")
        add.add_argument("--role", required=True, choices=ROLES)
        add.add_argument("--storefront", action="append", default=[],
                         help="limit to this storefront (repeat for several; none: all)")
        if noun == "user":
            add.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of standard input")
            pw = actions.add_parser("passwd", parents=[common], help="set a new password")
            pw.add_argument("name")
            pw.add_argument("--password-stdin", action="store_true")
            actions.add_parser("remove", parents=[common], help="remove a user").add_argument(
                "name")
        else:
            actions.add_parser("revoke", parents=[common], help="revoke a token").add_argument(
                "name")
        actions.add_parser("list", parents=[common], help=f"list {noun}s").add_argument(
            "--json", action="store_true")
        p.set_defaults(func=func, reads_only=False)
