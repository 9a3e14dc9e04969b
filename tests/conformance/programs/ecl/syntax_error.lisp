(defun main ()
  (write-line "unbalanced"
