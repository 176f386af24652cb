#!/usr/bin/python3
# The last line of the bench's alternating comparisons (console-overhead.sh,
# compare-builds.sh): the median of each side's runs and the ratio B/A.
#
# Usage: median-ratio.py NAME_A "RATE RATE..." NAME_B "RATE RATE..."
# Prints: median NAME_A X, NAME_B Y requests/s: ratio NAME_B/NAME_A Z
import statistics
import sys

if len(sys.argv) != 5:
    sys.exit("usage: median-ratio.py NAME_A RATES_A NAME_B RATES_B")
name_a, name_b = sys.argv[1], sys.argv[3]
a = statistics.median(float(x) for x in sys.argv[2].split())
b = statistics.median(float(x) for x in sys.argv[4].split())
print("median %s %.1f, %s %.1f requests/s: ratio %s/%s %.3f"
      % (name_a, a, name_b, b, name_b, name_a, b / a))
