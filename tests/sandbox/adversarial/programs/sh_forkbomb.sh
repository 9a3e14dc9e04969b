# PR-01 in shell: a function that pipes into itself in the background, forever. The first shell then
# forks on until the pids limit stops it (dash aborts with "Cannot fork"): were it to exit first, the
# run would end there and its box take the bomb with it before the limit is ever reached.
bomb() { bomb | bomb & }
bomb
echo "bomb=launched"
while :; do /bin/true; done
