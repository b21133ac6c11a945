"""Ops subcommands beyond serve/db/call, one module each, registered by ``cli``.

Each module has ``register(subparsers)`` adding its subcommand(s); a command's
function takes the parsed arguments and returns the exit code (0 ok, 1 the work
found a problem, 2 bad usage or configuration, 3 unreachable).
"""
