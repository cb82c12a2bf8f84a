"""The commands the CLI tells its user to run next, spelled so that they work as printed.

A bare ``python`` is often not the interpreter that has ``requests`` (here it is ``.venv``'s), and
``make upload`` makes its token for a user of its own choosing, so a hint names the interpreter
that is running now (relative to the current directory where it can), or, under ``make upload``,
``make upload`` itself with the same user. Options that came from the command line rather than
the environment are repeated (the token only by name: a hint never prints a secret).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from client.errors import KeptUpload

# Set by `make upload` to how it was invoked ("make upload SUB=alice"); hints then use make too.
MAKE_ENV = "UPLOAD_CLI_MAKE"
# The lifecycle rule's default (template.yaml's IncompleteUploadExpiryDays).
DEFAULT_EXPIRY_DAYS = 2


@dataclass(frozen=True, slots=True)
class Invocation:
    python: str  # the interpreter, as typed from the current directory
    make: str | None = None  # "make upload SUB=alice" when run by `make upload`
    api_url: str | None = None  # --api-url, when given on the command line
    token_flag: bool = False  # --token was given on the command line

    @classmethod
    def current(
        cls, env: Mapping[str, str], *, api_url: str | None = None, token_flag: bool = False, cwd: str | None = None
    ) -> Invocation:
        return cls(
            python=interpreter(cwd or os.getcwd()),
            make=env.get(MAKE_ENV) or None,
            api_url=api_url,
            token_flag=token_flag,
        )

    def command(self, name: str, *arguments: str, target: str | None = None) -> str:
        """The command line that runs ``python -m client NAME [ARGUMENTS] [TARGET]`` the same way
        this one was run."""
        if self.make is not None:
            line = [self.make, f"CMD={name}"]
            if target is not None:
                line.append("FILE=" + shlex.quote(target))
            if arguments:
                line.append("ARGS=" + shlex.quote(" ".join(arguments)))
            return " ".join(line)
        options = [*arguments]
        if self.api_url is not None:
            options += ["--api-url", self.api_url]
        line = [self.python, "-m", "client", name, *options] + ([target] if target is not None else [])
        text = " ".join(shlex.quote(part) for part in line)
        return text + (" --token TOKEN" if self.token_flag else "")


def interpreter(cwd: str) -> str:
    """The running interpreter as a path to type from ``cwd`` (``.venv/bin/python`` here)."""
    executable = sys.executable or "python3"
    relative = os.path.relpath(executable, cwd)
    if relative.startswith(os.pardir):
        return executable
    return relative if os.sep in relative else os.curdir + os.sep + relative


def kept_message(kept: KeptUpload, invocation: Invocation) -> str:
    """What to do with an upload that was stopped and kept: the exact resume (and abort) command."""
    if kept.state_file is not None:
        resume = invocation.command("resume", target=kept.path)
        abort = invocation.command("abort", target=kept.path)
    else:  # no state file to find it by: name the upload
        resume = invocation.command("resume", "--upload-id", kept.upload_id, target=kept.path)
        abort = invocation.command("abort", target=kept.upload_id)
    return (
        f"kept the upload of {kept.key} (upload {kept.upload_id}): {kept.parts_stored} of {kept.part_count}"
        " parts confirmed in S3\n"
        f"resume with:  {resume}\n"
        f"or abort it:  {abort}\n"
        f"(the bucket's lifecycle rule removes uploads never resumed, after {DEFAULT_EXPIRY_DAYS} days by default)"
    )
