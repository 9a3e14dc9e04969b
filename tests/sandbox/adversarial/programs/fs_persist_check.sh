# FS-08 / SC-02 (run N+1): nothing of the previous run may be visible.
for p in /tmp/stockade-adv-persist /dev/shm/stockade-adv-persist /box/.stockade-adv-persist \
         /tmp/sitecustomize.py /box/usercustomize.py /tmp/stockade-adv-fifo "$HOME/.cache/pip" \
         "$HOME/.local" /tmp/__pycache__; do
    if [ -e "$p" ] || [ -L "$p" ]; then echo "found=$p"; else echo "absent=$p"; fi
done
echo "tmp_listing=$(ls -A /tmp | tr '\n' ' ')"
echo "shm_listing=$(ls -A /dev/shm | tr '\n' ' ')"
echo "box_listing=$(ls -A /box | tr '\n' ' ')"
echo "procs=$(ls /proc | grep -c '^[0-9]')"
python3 -c 'print("python_ran=1")'
