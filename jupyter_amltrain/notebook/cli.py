"""``jupyter amltrain``: Jupyter's command dispatcher runs this ``jupyter-amltrain`` script.

    jupyter amltrain install-kernel [--name amltrain] [--display-name TEXT] [--user | --sys-prefix | --prefix DIR]
"""

from __future__ import annotations

import argparse
import sys

from jupyter_amltrain.notebook.kernelspec import DISPLAY_NAME, KERNEL_NAME, install_kernel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter amltrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install-kernel", help="install the preloaded kernel (extension loaded, ws defined)")
    install.add_argument("--name", default=KERNEL_NAME, help=f"kernelspec name (default {KERNEL_NAME})")
    install.add_argument("--display-name", default=DISPLAY_NAME,
                         help=f"shown in the launcher (default {DISPLAY_NAME!r})")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only (the default)")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python environment (sys.prefix)")
    where.add_argument("--prefix", default=None, help="into PREFIX/share/jupyter/kernels")
    args = parser.parse_args(argv)
    from jupyter_amltrain.exceptions import AzureMLException

    prefix = sys.prefix if args.sys_prefix else args.prefix
    try:
        folder = install_kernel(args.name, args.display_name, user=prefix is None, prefix=prefix)
    except (AzureMLException, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Installed kernelspec {args.name} in {folder}")
    print(f"Pick {args.display_name!r} as the kernel: it loads jupyter_amltrain and defines ws.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
