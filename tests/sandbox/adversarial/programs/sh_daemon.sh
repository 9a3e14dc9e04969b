# PR-03 in shell: nohup + setsid + trap-ignored signals + redirected stdio, and the script exits 0.
nohup setsid sh -c 'trap "" HUP TERM INT QUIT USR1 USR2; while :; do sleep 1; done' > /dev/null 2>&1 < /dev/null &
( trap '' HUP TERM; exec sleep 1000 ) > /dev/null 2>&1 &
disown 2>/dev/null
echo "daemons=2"
exit 0
