#!/usr/bin/env python3
"""Write a SIPp -inf CSV of N distinct GB28181 device ids with one fixed password.
usage: gen-users.py [N=20000] [out=users.csv] [password=12345678]"""

import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
out = sys.argv[2] if len(sys.argv) > 2 else "users.csv"
pw = sys.argv[3] if len(sys.argv) > 3 else "12345678"
with open(out, "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(1, n + 1):
        f.write(f"3402000000132{i:07d};{pw}\n")
