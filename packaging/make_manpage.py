#!/usr/bin/env python3
"""Writes dsfs.8 from dsfs.8.in: @VERSION@ becomes the version and
@OPTIONS@ the option list of `dsfs --help`, the one place options and their
defaults are defined (tools/options.cc), so the man page cannot drift.

usage: make_manpage.py TEMPLATE OUTPUT VERSION [DSFS_BINARY]"""
import re
import subprocess
import sys

OPTION = re.compile(r"^  (\S+)\s+(.*?)(?: \[default: (.*)\])?$")


def troff_escape(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    # a line starting with . or ' would be a request
    return re.sub(r"^([.'])", r"\\&\1", s)


def options_troff(help_text):
    out, in_opts = [], False
    for line in help_text.splitlines():
        if line.startswith("options (-o):"):
            in_opts = True
            continue
        if not in_opts or not line.strip():
            continue
        if not line.startswith("  "):
            break  # the text after the option list
        m = OPTION.match(line)
        if not m:
            raise SystemExit(f"make_manpage: cannot parse option line {line!r}")
        name, text, default = m.groups()
        name = name.replace("=...", "=")
        out.append(".TP")
        out.append(f"\\fB{troff_escape(name)}\\fR")
        text = troff_escape(text)
        if default:
            text += f" (default: {troff_escape(default)})"
        out.append(text)
    if not out:
        raise SystemExit("make_manpage: no options in the --help text")
    return "\n".join(out)


def main():
    template, output, version = sys.argv[1:4]
    text = open(template, encoding="utf-8").read()
    if "@OPTIONS@" in text:
        help_text = subprocess.run([sys.argv[4], "--help"], check=True,
                                   capture_output=True, text=True).stdout
        text = text.replace("@OPTIONS@", options_troff(help_text))
    text = text.replace("@VERSION@", version)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
