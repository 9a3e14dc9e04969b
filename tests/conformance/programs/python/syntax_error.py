def main(:
    print("unreachable"
