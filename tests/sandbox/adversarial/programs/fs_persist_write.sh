# FS-08 / SC-02 (run N): leave artefacts everywhere a later run or a host tool might pick them up.
set -u
echo "planted" > /tmp/stockade-adv-persist
echo "planted" > /dev/shm/stockade-adv-persist
echo "planted" > /box/.stockade-adv-persist
mkdir -p "$HOME/.cache/pip" "$HOME/.local/lib/python3.11/site-packages" /tmp/__pycache__
echo "import os; os.system('touch /tmp/stockade-adv-pwn-pth')" > "$HOME/.local/lib/python3.11/site-packages/evil.pth"
echo "print('HIJACKED')" > /tmp/sitecustomize.py
echo "print('HIJACKED')" > /box/usercustomize.py
mkfifo /tmp/stockade-adv-fifo
for d in /var/tmp /usr/local/lib /etc /root /home /run; do
    if ( : > "$d/stockade-adv-pwn" ) 2>/dev/null; then echo "wrote=$d"; else echo "denied=$d"; fi
done
# A holder process that would keep a socket or file alive into the next run.
( trap '' HUP TERM INT; exec sleep 600 ) > /dev/null 2>&1 &
echo "written=1"
