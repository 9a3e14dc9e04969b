proc main() =
  let x =
echo "unreachable"
