(let ((line (get-line (current-input-port))))
  (unless (eof-object? line)
    (display line)
    (newline)))
