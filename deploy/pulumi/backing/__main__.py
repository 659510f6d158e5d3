"""`python -m backing up|preview|refresh|destroy|outputs --stack NAME`: the program
run through Pulumi's Automation API, where this process is the program's
language host. It needs only the `pulumi` CLI, not its Python language
host; the stack, its configuration (Pulumi.NAME.yaml in the work
directory, this project's by default) and the backend are `pulumi up`'s."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pulumi import automation as auto

import backing

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m backing", description=__doc__)
    parser.add_argument("command", choices=["up", "preview", "refresh", "destroy", "outputs"])
    parser.add_argument("--stack", required=True, help="the stack, made when it does not exist")
    parser.add_argument(
        "--expect-no-changes", action="store_true", help="preview: fail when an update would change anything"
    )
    parser.add_argument("--remove", action="store_true", help="destroy: remove the stack and its history too")
    parser.add_argument(
        "--work-dir", default=str(PROJECT_DIR), help="where Pulumi.yaml and the stack's configuration are"
    )
    args = parser.parse_args(argv)

    # The Docker target's provider runs in a Python process of its own,
    # started by the engine: it must find this package and its libraries.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_DIR), os.environ.get("PYTHONPATH", "")])

    stack = auto.create_or_select_stack(
        stack_name=args.stack,
        project_name="notif-backing",
        program=backing.program,
        opts=auto.LocalWorkspaceOptions(work_dir=args.work_dir),
    )
    if args.command == "up":
        stack.up(on_output=print, color="never")
    elif args.command == "preview":
        result = stack.preview(on_output=print, color="never")
        changes = {op: n for op, n in result.change_summary.items() if op != "same" and n}
        if args.expect_no_changes and changes:
            print(f"error: the stack would change: {changes}", file=sys.stderr)
            return 1
    elif args.command == "refresh":
        stack.refresh(on_output=print, color="never")
    elif args.command == "destroy":
        stack.destroy(on_output=print, color="never")
        if args.remove:
            stack.workspace.remove_stack(args.stack)
    else:
        # Secrets stay hidden, as `pulumi stack output --json` shows them.
        outputs = {k: "[secret]" if v.secret else v.value for k, v in stack.outputs().items()}
        print(json.dumps(outputs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
