(let ((line (read-line *standard-input* nil)))
  (when line
    (write-line line)))
