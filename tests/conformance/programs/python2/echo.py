import sys

line = sys.stdin.readline()
sys.stdout.write(line)
