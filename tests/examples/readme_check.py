#!/usr/bin/env python3
"""readme_check.py README EXAMPLE: the README's opening shows the example's code.

Every block of EXAMPLE between a line "// [readme: NAME]" and "// [end]" must appear,
line for line, in a ```cpp block of the README before its first "## " heading after
the title. Exits non-zero, naming the block, when one does not.
"""
import re
import sys


def blocks(example):
    out, name, lines = {}, None, []
    for line in example.splitlines():
        m = re.match(r"\s*// \[readme: (.+)\]\s*$", line)
        if m:
            name, lines = m.group(1), []
        elif name is not None and line.strip() == "// [end]":
            out[name] = "\n".join(lines)
            name = None
        elif name is not None:
            lines.append(line)
    return out


def opening_code(readme):
    text = readme.split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"```cpp\n(.*?)```", text, re.S)]


def main():
    readme = open(sys.argv[1], encoding="utf-8").read()
    example = open(sys.argv[2], encoding="utf-8").read()
    wanted = blocks(example)
    if not wanted:
        sys.exit("readme_check: no [readme: ...] block in " + sys.argv[2])
    code = opening_code(readme)
    failed = False
    for name, text in wanted.items():
        if not any(text in c for c in code):
            print("readme_check: the README's opening does not show the '%s' block of %s:\n%s"
                  % (name, sys.argv[2], text), file=sys.stderr)
            failed = True
        else:
            print("readme_check: '%s' block found" % name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
