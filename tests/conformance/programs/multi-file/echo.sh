IFS= read -r line
printf '%s\n' "$line"
