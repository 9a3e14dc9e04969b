read -l line
printf '%s\n' $line
