if true
    echo "unterminated"
